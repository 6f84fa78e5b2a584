#!/usr/bin/env bash
# Builds the AWS Lambda package of delete-sync: OUT_DIR/delete-sync-lambda-x86_64.zip with a
# `bootstrap` for the provided.al2023 (or provided.al2) runtime.
#
#   scripts/package-lambda.sh [OUT_DIR]     (default OUT_DIR: build/lambda-package)
#   DS_LAMBDA_BINARY=build/ci/delete-sync scripts/package-lambda.sh   (package that binary)
#
# build/lambda-package/delete-sync-lambda-x86_64.zip is where the CDK app (DEFAULT_LAMBDA_ZIP in
# deploy/aws-cdk/lib/settings.ts) and docs/DEPLOY-AWS.md look for it; a jest test
# (deploy/aws-cdk/test/package-path.test.ts) runs this script and checks that they agree. The
# Release build itself goes to build/lambda (the package once went there too, which the app
# never found).
#
# The binary is linked dynamically against Debian 12's libraries; every shared library `ldd`
# reports, glibc and its dynamic loader included, goes into lib/ of the zip, and `bootstrap`
# (a /bin/sh script: the Lambda images have one) runs the bundled loader with --library-path,
# so nothing of the image's own libraries is used. Static linking was not chosen: Debian ships
# no static libraries for several of libcurl's dependencies (GSSAPI/Kerberos, LDAP, librtmp,
# libssh2 ...), and a static glibc cannot use getaddrinfo's NSS modules reliably.
#
# Layout of the zip (extracted by Lambda under /var/task):
#   bootstrap                  the entry point
#   bin/delete-sync            the binary (stripped)
#   lib/ld-linux-x86-64.so.2   the loader, and every library ldd lists
#
# Only x86_64: Debian's aarch64 cross toolchain (g++-aarch64-linux-gnu) exists, but the
# arm64 builds of every library dependency (libcurl, OpenSSL, SQLite, spdlog ... via
# multiarch :arm64 packages) would have to be installed beside the host's, and the result
# cannot be tested here without an arm64 machine or qemu-user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-$ROOT/build/lambda-package}"
BUILD_DIR="$ROOT/build/lambda"
ARCH="$(uname -m)"
if [[ "$ARCH" != "x86_64" ]]; then
  echo "package-lambda: this script packages x86_64 only (this machine is $ARCH)" >&2
  exit 2
fi
for tool in cmake zip ldd strip; do
  command -v "$tool" >/dev/null || {
    echo "package-lambda: '$tool' is missing (scripts/install-deps.sh --build-only)" >&2
    exit 2
  }
done

# DS_LAMBDA_BINARY=PATH packages a binary built elsewhere (e.g. build/ci/delete-sync) instead.
BINARY="${DS_LAMBDA_BINARY:-}"
if [[ -z "$BINARY" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DDS_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target delete-sync
  BINARY="$BUILD_DIR/delete-sync"
elif [[ ! -x "$BINARY" ]]; then
  echo "package-lambda: DS_LAMBDA_BINARY=$BINARY is not an executable" >&2
  exit 2
fi

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib"
install -m 0755 "$BINARY" "$STAGE/bin/delete-sync"
strip --strip-unneeded "$STAGE/bin/delete-sync"

# Every library the binary needs, resolved on this machine, and the loader itself.
loader=""
while read -r line; do
  case "$line" in
    *"=> not found"*)
      echo "package-lambda: a library is missing: $line" >&2
      exit 1
      ;;
    *"=> /"*) path="${line#*=> }" ;;
    /*) path="$line" ;;
    *) continue ;;  # linux-vdso.so.1
  esac
  path="${path%% (*}"
  cp -L "$path" "$STAGE/lib/$(basename "$path")"
  case "$(basename "$path")" in ld-linux*) loader="$(basename "$path")" ;; esac
done < <(ldd "$STAGE/bin/delete-sync")
if [[ -z "$loader" ]]; then
  echo "package-lambda: ldd reported no dynamic loader" >&2
  exit 1
fi
chmod 0755 "$STAGE/lib/"*

cat >"$STAGE/bootstrap" <<BOOT
#!/bin/sh
# delete-sync's Lambda entry point: runs the bundled binary with the bundled C library and
# loader, so that nothing from the image is needed but /bin/sh.
case "\$0" in
  */*) here="\${0%/*}" ;;
  *) here="\${LAMBDA_TASK_ROOT:-.}" ;;
esac
# Debian's libcurl looks for /etc/ssl/certs/ca-certificates.crt; Amazon Linux keeps its CA
# bundle elsewhere.
if [ -z "\${AWS_CA_BUNDLE:-}" ] && [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then
  for f in /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/certs/ca-bundle.crt; do
    if [ -e "\$f" ]; then
      AWS_CA_BUNDLE="\$f"
      export AWS_CA_BUNDLE
      break
    fi
  done
fi
exec "\$here/lib/$loader" --library-path "\$here/lib" "\$here/bin/delete-sync" "\$@"
BOOT
chmod 0755 "$STAGE/bootstrap"

mkdir -p "$OUT_DIR"
ZIP="$(cd "$OUT_DIR" && pwd)/delete-sync-lambda-x86_64.zip"
rm -f "$ZIP"
(cd "$STAGE" && zip -q -r -X "$ZIP" bootstrap bin lib)
echo "package-lambda: wrote $ZIP ($(du -h "$ZIP" | cut -f1), $(ls "$STAGE/lib" | wc -l) libraries)"
