#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds with -Werror, runs the
# unit tests, starts the local Ceph RGW, RabbitMQ and CephFS and runs the integration tests
# against them, checks the Prometheus rules and the AWS CDK app, a smoke run of the benchmarks
# (tiny sizes, numbers not kept), then the unit tests again under ASan/UBSan and under TSan and
# a short fuzzing run. Stops the servers it started. Each step prints the seconds since the start.
#
# Schedule (issue 18, CI time): the servers' tests are mostly waiting (for RGW's pushes, an
# outage, a host's eviction), so the three other builds (ASan/UBSan, TSan, libFuzzer) compile
# in the background at the lowest CPU priority (nice 19) while they run, and only their test
# runs wait at the end. The servers themselves boot in the background during the first build.
#   DS_CI_TSAN=0 / DS_CI_FUZZ=0   skip the TSan run / the fuzzing (and their builds)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="$(nproc)"

step() { printf '\n==> [%d s] %s\n' "$SECONDS" "$*"; }

# Debug information as line tables only (-g1): sanitizer reports and backtraces keep file:line,
# and a translation unit compiles in about two thirds of the time it takes with -g (issue 18,
# CI time: src/core/engine.cc 8.6 s against 12.3 s). Build with -g yourself to debug.
LINES_RELWITHDEBINFO=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
# The sanitizer trees at -O1: compiled faster than at -O2, run faster than at -O0. The ASan/UBSan
# tree keeps assertions (no NDEBUG) and is also the libFuzzer tree (clang, DS_FUZZ: the fuzz
# targets link the same instrumented libraries), so that the libraries are compiled once for both.
LINES_ASAN=(-DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1")
LINES_TSAN=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")
# Unity build (CMakeLists.txt, DS_UNITY): batches of 8 files compile in about half the time.
UNITY=(-DDS_UNITY=ON)

# run_shards NAME BINARY: the whole unit-test binary as JOBS processes side by side, each a
# gtest shard (one process per test, as ctest runs them, costs half a second per test under
# ASan: 384 process starts). Logs in build/NAME-shard-I.log; a failing shard's log is printed.
run_shards() {
  local name="$1" bin="$2" i status=0
  local -a pids=()
  for ((i = 0; i < JOBS; i++)); do
    GTEST_TOTAL_SHARDS="$JOBS" GTEST_SHARD_INDEX="$i" "$bin" >"build/$name-shard-$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < JOBS; i++)); do
    if ! wait "${pids[$i]}"; then
      status=1
      cat "build/$name-shard-$i.log" >&2
      echo "scripts/test.sh: $name, shard $i of $JOBS failed (log above: build/$name-shard-$i.log)" >&2
    fi
    grep -E '^\[==========\] .* ran|^\[  (PASSED|FAILED)  \]' "build/$name-shard-$i.log" | sed "s/^/  shard $i: /" || true
  done
  return "$status"
}

step "dependencies"
scripts/install-deps.sh
mkdir -p build

# Servers this run started are stopped at the end, also on failure; running ones are reused.
started_rgw=0
started_rmq=0
started_cephfs=0
labs_pid=""
builds_pid=""
cleanup() {
  if [[ -n "$builds_pid" ]]; then kill -- "-$builds_pid" >/dev/null 2>&1 || true; fi
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
(scripts/rgw-local.sh start && scripts/rabbitmq-local.sh start && scripts/cephfs-local.sh start) \
  >build/labs.log 2>&1 &
labs_pid=$!

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LINES_RELWITHDEBINFO[@]}" "${UNITY[@]}" \
  -DDS_WERROR=ON -DDS_BUILD_BENCH=ON >/dev/null
cmake --build build/ci -j"$JOBS"

step "unit tests"
ctest --test-dir build/ci -L unit --output-on-failure -j"$JOBS"

step "docs: every test they cite exists (scripts/check-cited-tests.py)"
scripts/check-cited-tests.py

step "Prometheus alert rules"
promtool check rules deploy/prometheus/delete-sync-rules.yml

step "ASan/UBSan + libFuzzer and TSan builds, and the include check: in the background at nice 19, log in build/builds.log"
# setsid: the builds are their own process group, killed as one if this script fails. A new
# session is also a new scheduling autogroup where the kernel has them (sched_autogroup): CPU is
# shared fairly between autogroups whatever their processes' nice values, so the group itself is
# set to nice 19 (/proc/self/autogroup) as well as its processes.
setsid nice -n 19 bash -c '
  set -euo pipefail
  if [[ -w /proc/self/autogroup ]]; then echo 19 >/proc/self/autogroup || true; fi
  SECONDS=$5
  printf "==> [%d s] ASan/UBSan build (clang, with the libFuzzer targets)\n" "$SECONDS"
  cmake -S . -B build/asan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug "$1" "$2" \
    -DDS_FUZZ=ON -DDS_WERROR=ON >/dev/null
  targets=(unit_tests)
  if [[ "${DS_CI_FUZZ:-1}" == 1 ]]; then targets+=(fuzzers); fi
  cmake --build build/asan -j"$3" --target "${targets[@]}"
  if [[ "${DS_CI_TSAN:-1}" == 1 ]]; then
    printf "==> [%d s] TSan build\n" "$SECONDS"
    cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo "$4" "$2" -DDS_TSAN=ON -DDS_WERROR=ON >/dev/null
    cmake --build build/tsan -j"$3" --target unit_tests
  fi
  printf "==> [%d s] every file of src/ and app/ on its own (scripts/check-includes.sh)\n" "$SECONDS"
  scripts/check-includes.sh build/ci/generated
  printf "==> [%d s] builds done\n" "$SECONDS"
' builds "${LINES_ASAN[0]}" "${UNITY[0]}" "$JOBS" "${LINES_TSAN[0]}" \
  "$SECONDS" >build/builds.log 2>&1 &
builds_pid=$!

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

step "waiting for the ASan/UBSan, TSan and libFuzzer builds (build/builds.log)"
if ! wait "$builds_pid"; then
  builds_pid=""
  cat build/builds.log >&2
  echo "scripts/test.sh: a sanitizer or fuzzing build failed (build/builds.log above)" >&2
  exit 1
fi
builds_pid=""
grep '^==> ' build/builds.log

step "unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_shards asan build/asan/unit_tests

if [[ "${DS_CI_TSAN:-1}" == 1 ]]; then
step "unit tests under ThreadSanitizer (threaded: Model*, Webhook*, SqliteState*, ...)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_shards tsan build/tsan/unit_tests
fi

if [[ "${DS_CI_FUZZ:-1}" == 1 ]]; then
step "fuzzing: libFuzzer targets, 15 s each, side by side (scripts/fuzz.sh)"
FUZZ_BUILD_DIR=build/asan FUZZ_PREBUILT=1 scripts/fuzz.sh 15
fi

step "done"
