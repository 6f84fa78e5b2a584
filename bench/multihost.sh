#!/usr/bin/env bash
# Applying events from several hosts on one shared cache (issue 17): events/s applied by
#   - 1, 2 and 3 hosts at once on one cache on CephFS (scripts/cephfs-local.sh: hosts bh-1,
#     bh-2, bh-3, each its own namespaces and ceph-fuse mount), state-journal rollback,
#   - 1 and 2 processes at once on one cache on local disk (a folder under /tmp), with
#     state-journal wal and with rollback (the same journal as across hosts),
# for removals (NREM removal events over NREM cached files of 1 KiB in 100 folders) and for
# creations (NCRE creation events of 1 KiB objects on the local RGW, journaled, then downloaded
# before apply exits); and, for the removals, the floor: a bare loop (bench/unlink_floor.cc
# --lstat --threads 16) that looks at and unlinks the same files with nothing else, run the
# same way by 1, 2 and 3 hosts and by 1 and 2 processes on local disk. The events are split evenly (contiguous parts) between the processes,
# which all start together; the time is from the start of the first to the end of the last.
# The state database is created before the timed part (an apply of one removal of an absent key).
# After every run the cache is checked: no file left after removals, every object present
# (1 KiB) after creations, every process exited 0, and the processes' summaries add up to N
# removed / downloaded. Configurations alternate, DS_BENCH_RUNS times (default 3).
# Starts the RGW lab and the CephFS lab when they are not running (and stops them on exit
# then); starts hosts bh-1..bh-3 when they are not running (and stops those it started).
# DS_BENCH_APPLY_ARGS: extra arguments for every timed apply (e.g. "--batch 2048").
#   bench/multihost.sh [NREM] [NCRE]      default: 20000 2000
# Writes docs/bench/multihost.md and prints it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNS="${DS_BENCH_RUNS:-3}"
NREM="${1:-20000}"
NCRE="${2:-2000}"
read -r -a EXTRA <<<"${DS_BENCH_APPLY_ARGS:-}"
HOSTS=(bh-1 bh-2 bh-3)
CEPHFS=scripts/cephfs-local.sh
TOOL="$ROOT/bench/multihost_fs.py"

bench_deps
bench_build fill_bucket
bench_build unlink_floor
bench_rgw

MH_STARTED_CEPHFS=0
MH_STARTED_HOSTS=()
MH_CEPH_DIR=""
mh_cleanup() {
  local rc=$?
  if [[ -n "$MH_CEPH_DIR" ]]; then
    "$CEPHFS" host-exec "${HOSTS[0]}" /usr/bin/python3 "$TOOL" clear "$MH_CEPH_DIR" >/dev/null 2>&1 || true
  fi
  local h
  for h in "${MH_STARTED_HOSTS[@]}"; do "$CEPHFS" host-stop "$h" >/dev/null 2>&1 || true; done
  if ((MH_STARTED_CEPHFS)); then "$CEPHFS" stop >/dev/null 2>&1 || true; fi
  (exit "$rc")
  bench_cleanup
}
trap mh_cleanup EXIT

"$CEPHFS" status >/dev/null 2>&1 || MH_STARTED_CEPHFS=1
"$CEPHFS" start >/dev/null
eval "$("$CEPHFS" env)"
running_hosts=" $("$CEPHFS" hosts | awk '{print $1}' | xargs) "
for h in "${HOSTS[@]}"; do
  if [[ "$running_hosts" != *" $h "* ]]; then
    MH_STARTED_HOSTS+=("$h")
    "$CEPHFS" host-start "$h" 2>/dev/null
  fi
done
MH_CEPH_DIR="$DS_CEPHFS_MNT/ds-bench-mh-$$"
LOCAL_DIR="$WORK/local"

bucket="bench-mh-$NCRE-$(date +%s)"
BENCH_BUCKETS+=("$bucket")
echo "== filling s3://$bucket with $NCRE objects" >&2
"$BUILD"/bench/fill_bucket --bucket "$bucket" --count "$NCRE" --threads 16 >&2

# The event files: for P processes, P parts (OUT.1 ... OUT.P); and the warm-up document.
for p in 1 2 3; do
  python3 "$TOOL" events remove "$NREM" "$p" "$WORK/rem$p" "$bucket"
  python3 "$TOOL" events create "$NCRE" "$p" "$WORK/cre$p" "$bucket"
  python3 "$TOOL" events keys "$NREM" "$p" "$WORK/flo$p" "$bucket"
done
python3 - "$WORK/warmup.jsonl" "$bucket" <<'PY'
import json, sys
doc = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
       "eventTime": "2026-12-07T00:00:00.000Z", "eventName": "ObjectRemoved:Delete",
       "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": sys.argv[2], "arn": "x"},
              "object": {"key": "warmup/absent.bin", "sequencer": "01"}}}]}
open(sys.argv[1], "w").write(json.dumps(doc) + "\n")
PY
# run1.sh TAG CMD...: the timed wrapper (start and end times, exit code, output).
cat >"$WORK/run1.sh" <<'SH'
tag=$1; shift
date +%s.%N >"$tag.start"
"$@" >"$tag.out" 2>"$tag.err"
echo $? >"$tag.rc"
date +%s.%N >"$tag.end"
SH

# on WHERE I CMD...: CMD on host I (CephFS) or here (local disk).
on() {
  local where=$1 i=$2
  shift 2
  if [[ "$where" == CephFS ]]; then
    "$CEPHFS" host-exec "${HOSTS[$((i - 1))]}" "$@"
  else
    "$@"
  fi
}

# one KIND WHERE JOURNAL P: one timed run; appends to $WORK/results.
one() {
  local kind=$1 where=$2 journal=$3 P=$4 dir cache i
  if [[ "$where" == CephFS ]]; then dir="$MH_CEPH_DIR"; else dir="$LOCAL_DIR"; fi
  cache="$dir/cache"
  # A fresh cache: for removals its files, made by the hosts together (one process on local
  # disk); then its state database.
  local m=0
  [[ "$kind" != create ]] && m=$NREM
  if [[ "$where" == CephFS ]]; then
    on CephFS 1 /usr/bin/python3 "$TOOL" clear "$cache"
    local makers=()
    for i in 1 2 3; do
      on CephFS "$i" /usr/bin/python3 "$TOOL" make "$cache" "$m" $((i - 1)) 3 &
      makers+=($!)
    done
    for i in "${makers[@]}"; do wait "$i"; done
  else
    python3 "$TOOL" clear "$cache"
    python3 "$TOOL" make "$cache" "$m" 0 1
  fi
  if [[ "$kind" != floor ]]; then
    on "$where" 1 env -u AWS_ACCESS_KEY_ID "$DS" apply --cache "$cache" --bucket "$bucket" \
      --events "$WORK/warmup.jsonl" --log-level warn --state-journal "$journal" >"$WORK/warmup.out" 2>&1 ||
      { echo "multihost: the warm-up apply failed:" >&2; cat "$WORK/warmup.out" >&2; exit 1; }
  fi
  [[ "$where" == local ]] && sync
  local envp=()
  [[ "$kind" == remove ]] && envp=(-u AWS_ACCESS_KEY_ID)
  local pids=()
  rm -f "$WORK"/p*.{start,end,rc,out,err}
  for ((i = 1; i <= P; i++)); do
    if [[ "$kind" == floor ]]; then
      on "$where" "$i" /bin/sh "$WORK/run1.sh" "$WORK/p$i" /bin/sh -c \
        "exec '$BUILD/bench/unlink_floor' --lstat --threads 16 '$cache' < '$WORK/flo$P.$i'" &
    else
      on "$where" "$i" /bin/sh "$WORK/run1.sh" "$WORK/p$i" env "${envp[@]}" "$DS" apply \
        --cache "$cache" --bucket "$bucket" --events "$WORK/${kind:0:3}$P.$i" --log-level warn \
        --state-journal "$journal" --json "${EXTRA[@]}" &
    fi
    pids+=($!)
  done
  wait "${pids[@]}" || true
  local n field
  case "$kind" in
    remove) n=$NREM field=removed ;;
    floor) n=$NREM field=unlinked ;;
    *) n=$NCRE field=downloaded ;;
  esac
  for ((i = 1; i <= P; i++)); do
    [[ "$(cat "$WORK/p$i.rc" 2>/dev/null)" == 0 ]] || {
      echo "multihost: $kind $where $journal P=$P: process $i failed (exit $(cat "$WORK/p$i.rc" 2>/dev/null)):" >&2
      tail -5 "$WORK/p$i.out" "$WORK/p$i.err" >&2
      exit 1
    }
  done
  local got sum secs warns prefixes=()
  for ((i = 1; i <= P; i++)); do prefixes+=("$WORK/p$i"); done
  got=$(on "$where" 1 /usr/bin/python3 "$TOOL" count "$cache")
  read -r secs sum warns < <(python3 "$TOOL" tally "$field" "${prefixes[@]}")
  if [[ "$kind" != create ]]; then
    [[ "$got" == "0 0" ]] || { echo "multihost: $kind $where $journal P=$P: files left: $got" >&2; exit 1; }
  else
    [[ "$got" == "$n 0" ]] || { echo "multihost: $kind $where $journal P=$P: files (count, wrong size): $got, want $n" >&2; exit 1; }
  fi
  [[ "$sum" == "$n" ]] || { echo "multihost: $kind $where $journal P=$P: $field adds up to $sum, want $n" >&2; exit 1; }
  echo "$kind|$where|$journal|$P|$secs|$warns" >>"$WORK/results"
  printf '   %-6s %-6s %-8s x%d: %8.2f s%s\n' "$kind" "$where" "$journal" "$P" "$secs" \
    "$( ((warns)) && echo "  ($warns lock warnings)")" >&2
}

CONFIGS=("CephFS rollback 1" "CephFS rollback 2" "CephFS rollback 3"
  "local wal 1" "local wal 2" "local rollback 1" "local rollback 2")
FLOOR_CONFIGS=("CephFS - 1" "CephFS - 2" "CephFS - 3" "local - 1" "local - 2")
: >"$WORK/results"
for run in $(seq "$RUNS"); do
  for kind in remove floor create; do
    echo "== $kind run $run/$RUNS" >&2
    configs=("${CONFIGS[@]}")
    [[ "$kind" == floor ]] && configs=("${FLOOR_CONFIGS[@]}")
    for c in "${configs[@]}"; do
      read -r where journal P <<<"$c"
      one "$kind" "$where" "$journal" "$P"
    done
  done
done

header="Generated by \`bench/multihost.sh $NREM $NCRE\`${DS_BENCH_APPLY_ARGS:+ with DS_BENCH_APPLY_ARGS=\"$DS_BENCH_APPLY_ARGS\"} on $(date -u +%Y-%m-%d), $(nproc) cores. CephFS: \`scripts/cephfs-local.sh\` (Ceph $(dpkg-query -W -f='${Version}' ceph-fuse), one MDS, memstore OSD, ceph-fuse per host), state-journal rollback; local disk: $(df -T "$WORK" | awk 'NR==2{print $2}') under /tmp. \`delete-sync apply\` with its defaults (--batch 512, --fetch-concurrency 4, audit log on). $RUNS alternating runs, median (min-max); events/s from the median time (range from the fastest and slowest runs). The last column counts \"is locked by another process\" warnings (a wait over 5 s) over all runs."
mkdir -p "$OUT_DIR"
python3 "$TOOL" report "$WORK/results" "$NREM" "$NCRE" "$RUNS" "$header" >"$OUT_DIR/multihost.md"
cat "$OUT_DIR/multihost.md"
