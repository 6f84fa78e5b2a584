#!/usr/bin/env bash
# Every source file and header of src/ and app/ compiles on its own (clang -fsyntax-only, one
# process per file, as many at a time as there are cores: about 4 CPU-seconds per file). The unity builds (DS_UNITY) compile
# files in batches, where a missing #include is hidden by an earlier file of the same batch:
# this check finds it before someone's plain build does. Warnings are left to the real builds.
#
#   scripts/check-includes.sh [GENERATED_DIR]   GENERATED_DIR: a configured build tree's
#                                               generated/ folder (default build/ci/generated)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
GENERATED="${1:-build/ci/generated}"
if [[ ! -f "$GENERATED/common/version_info.h" ]]; then
  echo "check-includes: $GENERATED/common/version_info.h is missing: configure a build tree first" >&2
  exit 2
fi
CXX="${CHECK_CXX:-clang++-14}"
# The flags a target gets from CMakeLists.txt: the project's include folders and the packages'.
read -r -a PKG <<<"$(pkg-config --cflags cpp-httplib librabbitmq libmicrohttpd gnutls)"
FLAGS=(-std=c++20 -fsyntax-only -w -Isrc -Iapp "-I$GENERATED" "${PKG[@]}")

# Every .cc file includes its own header first (checked below), which checks that header too;
# a header without a .cc of the same name is compiled as a translation unit of its own.
FILES=()
while IFS= read -r f; do
  case "$f" in
    *.cc)
      FILES+=("$f")
      h="${f%.cc}.h"
      if [[ -f "$h" ]] && ! grep -m1 "^#include" "$f" | grep -qF "\"${h#*/}\""; then
        echo "check-includes: $f does not include its own header ${h#*/} first" >&2
        exit 1
      fi
      ;;
    *.h) if [[ ! -f "${f%.h}.cc" ]]; then FILES+=("$f"); fi ;;
  esac
done < <(find src app -name '*.cc' -o -name '*.h' | sort)
failed="$(mktemp)"
trap 'rm -f "$failed"' EXIT
check_one() {
  # Headers are compiled as C++ translation units of their own.
  if ! "$CXX" "${FLAGS[@]}" -x c++ "$1" 2>"$failed.$BASHPID"; then
    { echo "== $1"; cat "$failed.$BASHPID"; } >>"$failed"
  fi
  rm -f "$failed.$BASHPID"
}
export -f check_one
export CXX failed
export FLAGS_STR="${FLAGS[*]}"
printf '%s\n' "${FILES[@]}" |
  xargs -P "$(nproc)" -I{} bash -c 'read -r -a FLAGS <<<"$FLAGS_STR"; check_one "$1"' _ {}
if [[ -s "$failed" ]]; then
  cat "$failed" >&2
  echo "check-includes: a file does not compile on its own (above): add the #include it needs" >&2
  exit 1
fi
echo "check-includes: ${#FILES[@]} files of src/ and app/ compile on their own"
