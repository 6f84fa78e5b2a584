#!/usr/bin/env bash
# Installs what delete-sync needs to build and test on Debian 12, only what is missing.
# Never runs apt-get autoremove.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libcurl4-openssl-dev libsqlite3-dev libssl-dev nlohmann-json3-dev libpugixml-dev
  libcli11-dev libtomlplusplus-dev libspdlog-dev libcpp-httplib-dev librabbitmq-dev libmicrohttpd-dev libgnutls28-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl python3
  clang-14 libclang-rt-14-dev
  zip unzip  # scripts/package-lambda.sh
)
# The local S3 server (Ceph RGW) and its client, for integration tests and the demo.
if [[ "${1:-}" != "--build-only" ]]; then
  PACKAGES+=(radosgw ceph-mon ceph-osd awscli uuid-runtime)
  # Headless browser for the status page test (tests/integration/ops_test.cc), and promtool
  # for checking deploy/prometheus/delete-sync-rules.yml in scripts/test.sh.
  PACKAGES+=(chromium prometheus)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
