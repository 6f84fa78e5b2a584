# Shared by the bench/*.sh scripts (sourced, not run): dependencies, the Release build, the
# local RGW and the serve process, with one cleanup on exit.
#   WORK            a fresh scratch folder, removed on exit
#   DS              the Release delete-sync binary (after bench_build)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$(mktemp -d /tmp/ds-bench-XXXXXX)"
# DS_BENCH_BUILD: an already configured build folder (with -DDS_BUILD_BENCH=ON) to use
# instead of the Release build in build/perf (the CI smoke run uses its own build).
BUILD="${DS_BENCH_BUILD:-$ROOT/build/perf}"
# Absolute: some benchmarks run the binary from another working directory (bench/multihost.sh
# runs it inside a lab host, whose working directory is /).
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
DS="$BUILD/delete-sync"
# Where the reports go (bench/run --smoke points it at a scratch folder).
OUT_DIR="${DS_BENCH_OUT_DIR:-$ROOT/docs/bench}"
BENCH_STARTED_RGW=0
BENCH_SERVE_PID=""
BENCH_BUCKETS=()  # made by bench_serve: dropped on exit, with their topics, even after a failure

bench_cleanup() {
  local rc=$?
  # A failed run shows what serve said: the scratch folder and its log are removed below.
  if ((rc != 0)) && [[ -s "$WORK/serve.log" ]]; then
    echo "bench: failed (exit $rc); the last lines of serve's log:" >&2
    tail -n 20 "$WORK/serve.log" >&2
  fi
  bench_stop_serve
  local b
  for b in "${BENCH_BUCKETS[@]}"; do bench_drop_bucket "$b"; done
  if ((BENCH_STARTED_RGW)); then scripts/rgw-local.sh stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap bench_cleanup EXIT

# bench_deps [--build-only] [PACKAGE ...]: the project's dependencies (with the RGW unless
# --build-only) plus the Debian packages a comparison needs.
bench_deps() {
  local mode=()
  if [[ "${1:-}" == --build-only ]]; then mode=(--build-only); shift; fi
  scripts/install-deps.sh "${mode[@]}"
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  done
}

# bench_build TARGET ...: a Release build of delete-sync and the named bench programs.
bench_build() {
  if [[ -z "${DS_BENCH_BUILD:-}" ]]; then
    cmake -S . -B build/perf -DCMAKE_BUILD_TYPE=Release -DDS_BUILD_TESTS=OFF -DDS_BUILD_BENCH=ON \
      >/dev/null
  fi
  cmake --build "$BUILD" -j"$(nproc)" --target delete-sync "$@" >/dev/null
}

# bench_wait_consumer QUEUE: waits (up to 20 s) until QUEUE exists and has a consumer.
bench_wait_consumer() {
  local _
  for _ in $(seq 200); do
    scripts/rabbitmq-local.sh ctl list_queues name consumers 2>/dev/null | grep -q "^$1[[:space:]]1" && return 0
    sleep 0.1
  done
  echo "bench: queue $1 has no consumer after 20 s" >&2
  return 1
}

# bench_rgw: starts the local RGW unless it runs (and then stops it on exit), exports its AWS_*
# variables and an rclone remote "rgw:" for it.
bench_rgw() {
  scripts/rgw-local.sh status >/dev/null 2>&1 || BENCH_STARTED_RGW=1
  scripts/rgw-local.sh start >/dev/null
  eval "$(scripts/rgw-local.sh env)"
  export RCLONE_CONFIG="$WORK/rclone.conf"  # empty: the remote comes from the variables below
  touch "$RCLONE_CONFIG"
  export RCLONE_CONFIG_RGW_TYPE=s3 RCLONE_CONFIG_RGW_PROVIDER=Ceph \
    RCLONE_CONFIG_RGW_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    RCLONE_CONFIG_RGW_ENDPOINT="$AWS_ENDPOINT_URL_S3"
}

# bench_serve BUCKET CACHE PORT [--persistent]: runs `delete-sync serve` for BUCKET with the
# bucket's notifications pushed to it (a non-persistent, synchronous topic by default).
bench_serve() {
  local bucket=$1 cache=$2 port=$3 persist=${4:-} token="bench-$RANDOM$RANDOM"
  BENCH_BUCKETS+=("$bucket")
  "$DS" serve --cache "$cache" --bucket "$bucket" --log-level warn \
    --webhook-listen "127.0.0.1:$port" --webhook-token "$token" 2>"$WORK/serve.log" &
  BENCH_SERVE_PID=$!
  local _
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  scripts/rgw-local.sh notify "$bucket" "t-$bucket" "http://127.0.0.1:$port/?token=$token" \
    $persist >/dev/null
}

bench_stop_serve() {
  if [[ -n "$BENCH_SERVE_PID" ]]; then
    kill "$BENCH_SERVE_PID" 2>/dev/null || true
    wait "$BENCH_SERVE_PID" 2>/dev/null || true
    BENCH_SERVE_PID=""
  fi
}

# bench_drop_bucket BUCKET: the bucket and its topic (RGW 16.2 allows one persistent topic).
bench_drop_bucket() {
  scripts/rgw-local.sh aws s3 rb --force "s3://$1" >/dev/null 2>&1 || true
  scripts/rgw-local.sh aws sns delete-topic --topic-arn "arn:aws:sns:default::t-$1" \
    >/dev/null 2>&1 || true
}
