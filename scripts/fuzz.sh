#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan) in build/fuzz and runs each for SECONDS
# (default 15). The working corpus of each target lives in build/fuzz/corpus/<target> and grows
# from run to run; seeds are read from the project's own samples (tests/data/events,
# fuzz/corpus/*) and, when present, from the RGW captures in /work/shared/design/rgw-samples
# (read only: nothing is copied into the repository). A crash leaves its input in
# build/fuzz/artifacts/ and fails the script.
#
#   scripts/fuzz.sh [SECONDS]            every target
#   FUZZ_BUILD_DIR=build/asan FUZZ_PREBUILT=1 scripts/fuzz.sh 15
#                                        run targets already built in a tree configured with
#                                        -DDS_FUZZ=ON (scripts/test.sh: its ASan/UBSan tree)
#   FUZZ_TARGETS="fuzz_key_path" scripts/fuzz.sh 3600
#   FUZZ_JOBS=2 scripts/fuzz.sh 600      parallel workers per target (libFuzzer -fork), one
#                                        target at a time
#   FUZZ_PARALLEL=1 scripts/fuzz.sh      one target at a time (default: as many as cores)
# Long campaigns and reproducing a crash: docs/RELIABILITY.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${1:-15}"
BUILD="${FUZZ_BUILD_DIR:-build/fuzz}"
TARGETS=(${FUZZ_TARGETS:-fuzz_parse_notification fuzz_key_path fuzz_s3_xml fuzz_webhook})
RGW_SAMPLES="${RGW_SAMPLES:-/work/shared/design/rgw-samples}"

# -g1 (line tables): crash reports keep file:line, the build is faster than with -g.
if [[ "${FUZZ_PREBUILT:-0}" != 1 ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DDS_FUZZ=ON -DDS_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-$(nproc)}" --target fuzzers
fi

seeds_for() {
  case "$1" in
    fuzz_parse_notification | fuzz_webhook)
      echo tests/data/events
      echo fuzz/corpus/notification
      [[ -d "$RGW_SAMPLES" ]] && echo "$RGW_SAMPLES"
      ;;
    fuzz_s3_xml) echo fuzz/corpus/s3_xml ;;
    fuzz_key_path) echo fuzz/corpus/key_path ;;
  esac
  return 0
}

mkdir -p "$BUILD/artifacts"
# run_target T: one target's campaign, its log in $BUILD/T.log; fails when libFuzzer found a crash.
run_target() {
  local t="$1" corpus="$BUILD/corpus/$1"
  mkdir -p "$corpus"
  local seeds extra=()
  mapfile -t seeds < <(seeds_for "$t")
  if [[ -n "${FUZZ_JOBS:-}" ]]; then extra+=(-fork="$FUZZ_JOBS"); fi
  # -max_len 64 KiB: notification documents and listings are bigger than libFuzzer's default.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$BUILD/fuzz/$t" "$corpus" "${seeds[@]}" -max_total_time="$SECONDS_PER_TARGET" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$t-" "${extra[@]}" >"$BUILD/$t.log" 2>&1
}

# The targets run side by side, as many at a time as there are cores (FUZZ_PARALLEL): each
# libFuzzer process is single-threaded, so four 15 s campaigns take 30 s on 2 cores, not 60 s.
PARALLEL="${FUZZ_PARALLEL:-$(nproc)}"
if [[ -n "${FUZZ_JOBS:-}" ]]; then PARALLEL=1; fi
declare -A pid_of=()
for t in "${TARGETS[@]}"; do
  while (($(jobs -rp | wc -l) >= PARALLEL)); do wait -n || true; done
  printf '==> %s for %ss\n' "$t" "$SECONDS_PER_TARGET"
  run_target "$t" &
  pid_of[$t]=$!
done
status=0
for t in "${TARGETS[@]}"; do
  if ! wait "${pid_of[$t]}"; then
    echo "FAILED: $t (see $BUILD/$t.log; the input is in $BUILD/artifacts/)" >&2
    tail -40 "$BUILD/$t.log" >&2
    status=1
  fi
  printf '    %s:\n' "$t"
  grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "$BUILD/$t.log" | sed 's/^/    /' || true
done
exit "$status"
