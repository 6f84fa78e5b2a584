#!/usr/bin/env bash
# delete-sync through RabbitMQ (issue 6), on the local broker and RGW:
#  1. throughput: N removal events waiting in the queues of W partitioned workers (W = 1, 2, 4;
#     one consistent-hash exchange, every worker a `serve` process on ONE cache and its state
#     database, keys spread by PartitionKey as `route` does); time from the workers being let
#     go to every queue empty and every file gone. RUNS runs, the worker counts alternating.
#  2. delay: RGW publishing its notifications to the broker (topic with amqp push endpoint,
#     ack level broker, then none), one `serve` consuming; time from each S3 DELETE returning to the file
#     being gone, over D deletions.
#   bench/amqp.sh [N=10000] [RUNS=5] [D=200]
# Writes docs/bench/amqp.md (everything printed below the build steps).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N="${1:-10000}"
RUNS="${2:-5}"
D="${3:-200}"

bench_deps
bench_build amqp_load delete_latency
bench_rgw
STARTED_RMQ=0
scripts/rabbitmq-local.sh status >/dev/null 2>&1 || STARTED_RMQ=1
scripts/rabbitmq-local.sh start >/dev/null
eval "$(scripts/rabbitmq-local.sh env)"
LOAD="$BUILD"/bench/amqp_load
WORKER_PIDS=()
stop_workers() {
  local p
  for p in "${WORKER_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  WORKER_PIDS=()
}
trap 'stop_workers; if ((STARTED_RMQ)); then scripts/rabbitmq-local.sh stop >/dev/null 2>&1 || true; fi; bench_cleanup' EXIT

mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/amqp.md")
echo '```'
echo "bench/amqp.sh $N $RUNS $D  ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD))"
# The machine and versions.
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; cache on $(df -T "$WORK" | awk 'NR==2{print $2}')"
echo "rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server), radosgw $(dpkg-query -W -f='${Version}' radosgw)"
echo "N=$N removal events, $RUNS runs per worker count"

declare -A times
BUCKET="bench-amqp"
for run in $(seq "$RUNS"); do
  for w in 1 2 4; do
    id="r$run-w$w-$RANDOM"
    cache="$WORK/cache-$id"
    mkdir -p "$cache/k"
    (cd "$cache/k" && seq 0 $((N - 1)) | xargs touch)
    hx="bench-hash-$id"
    queues=()
    for i in $(seq "$w"); do
      q="bench-w$i-$id"
      queues+=("$q")
      "$DS" serve --cache "$cache" --bucket "$BUCKET" --webhook-listen off --log-level warn \
        --amqp-url "$DS_AMQP_URL" --amqp-queue "$q" --amqp-exchange "$hx" \
        --amqp-exchange-type x-consistent-hash --amqp-binding-key 1 2>>"$WORK/worker.log" &
      WORKER_PIDS+=($!)
    done
    # Wait until every worker declared its queue and consumes, then hold them still while the
    # queues fill.
    for q in "${queues[@]}"; do bench_wait_consumer "$q"; done
    for p in "${WORKER_PIDS[@]}"; do kill -STOP "$p"; done
    "$LOAD" publish --url "$DS_AMQP_URL" --exchange "$hx" --bucket "$BUCKET" --count "$N"
    for p in "${WORKER_PIDS[@]}"; do kill -CONT "$p"; done
    t=$("$LOAD" drain --url "$DS_AMQP_URL" --cache "$cache" --count "$N" \
      --queues "$(IFS=,; echo "${queues[*]}")")
    stop_workers
    times[$w]+="$t "
    printf 'run %d, %d worker(s): %s s, %.0f events/s\n' "$run" "$w" "$t" "$(echo "$N / $t" | bc -l)"
    for q in "${queues[@]}"; do
      scripts/rabbitmq-local.sh ctl delete_queue "$q" >/dev/null 2>&1 || true
      scripts/rabbitmq-local.sh ctl delete_queue "$q.dead-letter" >/dev/null 2>&1 || true
    done
    rm -rf "$cache"
  done
done

echo '```'
echo
echo "| workers | events/s median | min | max | seconds per $N (median) |"
echo "| --- | --- | --- | --- | --- |"
for w in 1 2 4; do
  python3 - "$N" "$w" ${times[$w]} <<'PY'
import statistics, sys
n, w, ts = int(sys.argv[1]), sys.argv[2], [float(x) for x in sys.argv[3:]]
rates = [n / t for t in ts]
print(f"| {w} | {statistics.median(rates):,.0f} | {min(rates):,.0f} | {max(rates):,.0f} | {statistics.median(ts):.2f} |")
PY
done

# 2. The delay from an S3 DELETE to the file being gone, RGW -> RabbitMQ -> serve.
echo
echo '```'
for ack in broker none; do
BUCKET2="bench-amqp-lat-$ack-$(date +%s)"
scripts/rgw-local.sh aws s3api create-bucket --bucket "$BUCKET2" >/dev/null
q="bench-lat-$RANDOM"
"$DS" serve --cache "$WORK/lat-$ack" --bucket "$BUCKET2" --webhook-listen off --log-level warn \
  --amqp-url "$DS_AMQP_URL" --amqp-queue "$q" --amqp-exchange delete-sync \
  --amqp-exchange-type topic --amqp-binding-key "t-$BUCKET2" 2>>"$WORK/worker.log" &
WORKER_PIDS+=($!)
bench_wait_consumer "$q"
"$DS" setup-notifications --bucket "$BUCKET2" --topic "t-$BUCKET2" --amqp-ack-level "$ack" \
  --push-endpoint "amqp://127.0.0.1:$DS_AMQP_PORT" --amqp-exchange delete-sync >/dev/null
echo "RGW -> RabbitMQ (topic with amqp-ack-level $ack) -> serve, $D deletions:"
"$BUILD"/bench/delete_latency --bucket "$BUCKET2" --cache "$WORK/lat-$ack" --count "$D"
echo
stop_workers
scripts/rabbitmq-local.sh ctl delete_queue "$q" >/dev/null 2>&1 || true
scripts/rabbitmq-local.sh ctl delete_queue "$q.dead-letter" >/dev/null 2>&1 || true
scripts/rgw-local.sh aws s3 rb --force "s3://$BUCKET2" >/dev/null 2>&1 || true
scripts/rgw-local.sh aws sns delete-topic --topic-arn "arn:aws:sns:default::t-$BUCKET2" >/dev/null 2>&1 || true
done
echo '```'
