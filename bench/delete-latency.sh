#!/usr/bin/env bash
# Time from an RGW DELETE returning to the cache file being gone, over N deletes, with
# delete-sync serve receiving RGW's notifications on its webhook. Starts (and stops) the local
# RGW when it is not running.
#   bench/delete-latency.sh [N] [--persistent]      default N: 1000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N="${1:-1000}"
PERSIST="${2:-}"
PORT="${DS_BENCH_PORT:-18189}"
BUCKET="bench-lat-$(date +%s)"

bench_deps
bench_build delete_latency
bench_rgw
scripts/rgw-local.sh aws s3api create-bucket --bucket "$BUCKET" >/dev/null
bench_serve "$BUCKET" "$WORK/cache" "$PORT" $PERSIST
if [[ -n "$PERSIST" ]]; then echo "topic: persistent"; else echo "topic: non-persistent (synchronous push)"; fi
"$BUILD"/bench/delete_latency --bucket "$BUCKET" --cache "$WORK/cache" --count "$N"
bench_drop_bucket "$BUCKET"
