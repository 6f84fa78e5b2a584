#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds with -Werror, runs the
# unit tests, the unit tests again under ASan/UBSan, then starts the local Ceph RGW and runs
# the integration tests against it. Stops the RGW it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="$(nproc)"

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDS_WERROR=ON >/dev/null
cmake --build build/ci -j"$JOBS"

step "unit tests"
ctest --test-dir build/ci -L unit --output-on-failure -j"$JOBS"

step "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DDS_SANITIZE=ON -DDS_WERROR=ON >/dev/null
cmake --build build/asan -j"$JOBS" --target unit_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan -L unit --output-on-failure -j"$JOBS"

step "local Ceph RGW"
started_rgw=0
if ! scripts/rgw-local.sh status >/dev/null 2>&1; then
  started_rgw=1
  trap 'scripts/rgw-local.sh stop >/dev/null 2>&1 || true' EXIT
fi
scripts/rgw-local.sh start

step "integration tests (real RGW, real notifications)"
ctest --test-dir build/ci -L integration --output-on-failure
if ((started_rgw)); then scripts/rgw-local.sh stop; trap - EXIT; fi
