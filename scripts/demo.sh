#!/usr/bin/env bash
# The end-to-end demo: builds delete-sync, starts a real local S3 server (Ceph RGW), runs
# `delete-sync serve` with the bucket's notifications pushed to its webhook, uploads a few
# objects, shows the cache, deletes one object and shows its copy gone, shows the audit record,
# then erases another object over HTTP and shows the receipt. Leaves nothing running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEMO_DIR="${DS_DEMO_DIR:-/tmp/delete-sync-demo}"
PORT="${DS_DEMO_PORT:-18089}"
BUCKET="demo-bucket"
TOKEN="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing what is missing and building"
scripts/install-deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DDS_BUILD_TESTS=OFF >/dev/null
cmake --build build/demo -j"$(nproc)" --target delete-sync >/dev/null
BIN="$ROOT/build/demo/delete-sync"

serve_pid=""
started_rgw=0
cleanup() {
  if [[ -n "$serve_pid" ]]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  if ((started_rgw)); then scripts/rgw-local.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

say "Starting a local Ceph RGW (S3 on 127.0.0.1)"
if ! scripts/rgw-local.sh status >/dev/null 2>&1; then started_rgw=1; fi
scripts/rgw-local.sh start >/dev/null
eval "$(scripts/rgw-local.sh env)"
aws() { scripts/rgw-local.sh aws "$@"; }
aws s3api create-bucket --bucket "$BUCKET" >/dev/null 2>&1 || true

say "Starting delete-sync serve (cache: $DEMO_DIR/cache)"
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
"$BIN" serve --cache "$DEMO_DIR/cache" --bucket "$BUCKET" \
  --webhook-listen "127.0.0.1:$PORT" --webhook-token "$TOKEN" >"$DEMO_DIR/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$DEMO_DIR/serve.log"; exit 1; }

say "Wiring the bucket's notifications to the webhook"
scripts/rgw-local.sh notify "$BUCKET" demo-topic "http://127.0.0.1:$PORT/?token=$TOKEN" >/dev/null
echo "s3:ObjectCreated:* and s3:ObjectRemoved:* of $BUCKET -> http://127.0.0.1:$PORT/?token=…"

say "Uploading objects (nested keys, spaces, non-ASCII)"
keys=("readme.txt" "images/cat one.png" "people/zoë/profile €.json" "data/2026/a+b.csv")
for k in "${keys[@]}"; do
  printf 'content of %s\n' "$k" >"$DEMO_DIR/upload"
  aws s3api put-object --bucket "$BUCKET" --key "$k" --body "$DEMO_DIR/upload" >/dev/null
  echo "PUT s3://$BUCKET/$k"
done
for k in "${keys[@]}"; do
  for _ in $(seq 200); do [[ -f "$DEMO_DIR/cache/$k" ]] && break; sleep 0.05; done
done

say "The cache now"
(cd "$DEMO_DIR/cache" && find . -path ./.delete-sync -prune -o -type f -printf '%8s bytes  %P\n' | sort -k3)

victim="people/zoë/profile €.json"
say "Deleting s3://$BUCKET/$victim from the bucket"
aws s3api delete-object --bucket "$BUCKET" --key "$victim" >/dev/null
if [[ ! -e "$DEMO_DIR/cache/$victim" ]]; then
  echo "gone from the cache already when the DELETE returned (RGW pushes synchronously)"
else
  start=$(date +%s%N)
  for _ in $(seq 2000); do [[ -e "$DEMO_DIR/cache/$victim" ]] || break; sleep 0.005; done
  end=$(date +%s%N)
  if [[ -e "$DEMO_DIR/cache/$victim" ]]; then echo "still present: FAILED"; exit 1; fi
  echo "gone from the cache $(( (end - start) / 1000000 )) ms after the DELETE returned"
fi

say "The cache now"
(cd "$DEMO_DIR/cache" && find . -path ./.delete-sync -prune -o -type f -printf '%8s bytes  %P\n' | sort -k3)
echo "(the empty folders people/zoë/ and people/ were pruned)"

say "The service's record of the removal (audit log, hash-chained)"
grep -E "removed s3://" "$DEMO_DIR/serve.log" || true
tail -1 "$DEMO_DIR/cache/.delete-sync/audit.log"
"$BIN" audit verify --cache "$DEMO_DIR/cache"

say "An erasure request for s3://$BUCKET/images/cat one.png, with its receipt"
curl -fsS -H "Authorization: Bearer $TOKEN" -d '{"keys":["images/cat one.png"],"request_id":"demo-erasure-1"}' \
  "http://127.0.0.1:$PORT/erase" | python3 -m json.tool
echo "(kept in $DEMO_DIR/cache/.delete-sync/receipts/demo-erasure-1.json)"

say "The cache now"
(cd "$DEMO_DIR/cache" && find . -path ./.delete-sync -prune -o -type f -printf '%8s bytes  %P\n' | sort -k3)
"$BIN" audit verify --cache "$DEMO_DIR/cache"

say "Stopping everything"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""
tail -1 "$DEMO_DIR/serve.log"
aws s3 rm --recursive "s3://$BUCKET" >/dev/null 2>&1 || true
echo "demo finished; cache and logs are in $DEMO_DIR"
