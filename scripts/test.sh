#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds with -Werror, runs the
# unit tests, the unit tests again under ASan/UBSan and under TSan, a short fuzzing run, checks
# the Prometheus rules and the AWS CDK app, then starts the local Ceph RGW and RabbitMQ and runs
# the integration tests against them, and a smoke run of the benchmarks (tiny sizes, numbers
# not kept). Stops the servers it started. Each step prints the seconds since the start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="$(nproc)"

step() { printf '\n==> [%d s] %s\n' "$SECONDS" "$*"; }

# Debug information as line tables only (-g1): sanitizer reports and backtraces keep file:line,
# and a translation unit compiles in about two thirds of the time it takes with -g (issue 18,
# CI time: src/core/engine.cc 8.6 s against 12.3 s). Build with -g yourself to debug.
LINES_RELWITHDEBINFO=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
LINES_DEBUG=(-DCMAKE_CXX_FLAGS_DEBUG="-g1")
# Unity build (CMakeLists.txt, DS_UNITY): batches of 8 files compile in about half the time.
UNITY=(-DDS_UNITY=ON)

step "dependencies"
scripts/install-deps.sh

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LINES_RELWITHDEBINFO[@]}" "${UNITY[@]}" \
  -DDS_WERROR=ON -DDS_BUILD_BENCH=ON >/dev/null
cmake --build build/ci -j"$JOBS"

step "unit tests"
ctest --test-dir build/ci -L unit --output-on-failure -j"$JOBS"

step "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug "${LINES_DEBUG[@]}" "${UNITY[@]}" -DDS_SANITIZE=ON \
  -DDS_WERROR=ON >/dev/null
cmake --build build/asan -j"$JOBS" --target unit_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan -L unit --output-on-failure -j"$JOBS"

# DS_CI_TSAN=0 / DS_CI_FUZZ=0 skip the two slowest steps (each builds the project once more).
if [[ "${DS_CI_TSAN:-1}" == 1 ]]; then
step "unit tests under ThreadSanitizer (threaded: Model*, Webhook*, SqliteState*, ...)"
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LINES_RELWITHDEBINFO[@]}" "${UNITY[@]}" \
  -DDS_TSAN=ON -DDS_WERROR=ON >/dev/null
cmake --build build/tsan -j"$JOBS" --target unit_tests
# The whole binary: the threaded tests are most of its time, the rest costs ~2 s.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build/tsan/unit_tests
fi

# Servers this run started are stopped at the end, also on failure; running ones are reused.
# They start in the background while the fuzzing and the checks below run (issue 18, CI time:
# RabbitMQ alone takes half a minute to boot, mostly waiting).
started_rgw=0
started_rmq=0
started_cephfs=0
labs_pid=""
cleanup() {
  if [[ -n "$labs_pid" ]]; then wait "$labs_pid" >/dev/null 2>&1 || true; fi
  if ((started_cephfs)); then scripts/cephfs-local.sh stop >/dev/null 2>&1 || true; fi
  if ((started_rmq)); then scripts/rabbitmq-local.sh stop >/dev/null 2>&1 || true; fi
  if ((started_rgw)); then scripts/rgw-local.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "local Ceph RGW, RabbitMQ (AMQP tests) and CephFS with a metadata server (multi-host tests: hosts are namespaces with ceph-fuse): starting in the background, log in build/labs.log"
if ! scripts/rgw-local.sh status >/dev/null 2>&1; then started_rgw=1; fi
if ! scripts/rabbitmq-local.sh status >/dev/null 2>&1; then started_rmq=1; fi
if ! scripts/cephfs-local.sh status >/dev/null 2>&1; then started_cephfs=1; fi
mkdir -p build
(scripts/rgw-local.sh start && scripts/rabbitmq-local.sh start && scripts/cephfs-local.sh start) \
  >build/labs.log 2>&1 &
labs_pid=$!

if [[ "${DS_CI_FUZZ:-1}" == 1 ]]; then
step "fuzzing: libFuzzer targets, 15 s each, side by side (scripts/fuzz.sh)"
scripts/fuzz.sh 15
fi

step "docs: every test they cite exists (scripts/check-cited-tests.py)"
scripts/check-cited-tests.py

step "Prometheus alert rules"
promtool check rules deploy/prometheus/delete-sync-rules.yml

step "AWS CDK app: template assertions (npm test) and offline cdk synth"
deploy/aws-cdk/test.sh

step "waiting for the local RGW, RabbitMQ and CephFS"
if ! wait "$labs_pid"; then
  labs_pid=""
  cat build/labs.log >&2
  echo "scripts/test.sh: a local server did not start (build/labs.log above)" >&2
  exit 1
fi
labs_pid=""
tail -n 3 build/labs.log

step "integration tests (real RGW, real notifications, real RabbitMQ, CephFS shared by hosts)"
# Several at a time: most of their time is waiting; what they share is locked (CMakeLists.txt).
ctest --test-dir build/ci -L integration --output-on-failure -j3

step "benchmark smoke run: every bench/*.sh with tiny sizes, one run (bench/run --smoke)"
DS_BENCH_BUILD=build/ci bench/run --smoke

step "done"
