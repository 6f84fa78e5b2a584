#!/usr/bin/env bash
# Time from an RGW DELETE returning to the cache file being gone, over N deletes, with
# delete-sync serve receiving RGW's notifications on its webhook. Starts (and stops) the local
# RGW when it is not running.
#   bench/delete-latency.sh [N] [--persistent]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N="${1:-100}"
PERSIST="${2:-}"
PORT="${DS_BENCH_PORT:-18189}"
DIR="$(mktemp -d /tmp/ds-bench-XXXXXX)"
BUCKET="bench-lat-$(date +%s)"
TOKEN="bench-$RANDOM$RANDOM"

scripts/install-deps.sh
cmake -S . -B build/perf -DCMAKE_BUILD_TYPE=Release -DDS_BUILD_TESTS=OFF -DDS_BUILD_BENCH=ON >/dev/null
cmake --build build/perf -j"$(nproc)" --target delete-sync delete_latency >/dev/null

started=0
serve_pid=""
cleanup() {
  [[ -n "$serve_pid" ]] && { kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true; }
  ((started)) && scripts/rgw-local.sh stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
scripts/rgw-local.sh status >/dev/null 2>&1 || started=1
scripts/rgw-local.sh start >/dev/null
eval "$(scripts/rgw-local.sh env)"
scripts/rgw-local.sh aws s3api create-bucket --bucket "$BUCKET" >/dev/null
build/perf/delete-sync serve --cache "$DIR/cache" --bucket "$BUCKET" --log-level warn \
  --webhook-listen "127.0.0.1:$PORT" --webhook-token "$TOKEN" 2>"$DIR/serve.log" &
serve_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
scripts/rgw-local.sh notify "$BUCKET" "t-$BUCKET" "http://127.0.0.1:$PORT/?token=$TOKEN" $PERSIST >/dev/null
if [[ -n "$PERSIST" ]]; then echo "topic: persistent"; else echo "topic: non-persistent (synchronous push)"; fi
build/perf/bench/delete_latency --bucket "$BUCKET" --cache "$DIR/cache" --count "$N"
scripts/rgw-local.sh aws s3 rb --force "s3://$BUCKET" >/dev/null 2>&1 || true
# Remove the topic too: RGW 16.2 allows only one persistent topic at a time.
scripts/rgw-local.sh aws sns delete-topic --topic-arn "arn:aws:sns:default::t-$BUCKET" >/dev/null 2>&1 || true
