#!/usr/bin/env python3
"""Helpers of bench/multihost.sh, run inside a CephFS lab host (scripts/cephfs-local.sh
host-exec) or on local disk: building a cache, counting it, clearing it, writing event files
and the report.

  multihost_fs.py make DIR N SLICE SLICES     files SLICE, SLICE+SLICES, ... of N (1 KiB each,
                                              d{i%100:03d}/obj{i:07d}.bin), 16 threads
  multihost_fs.py count DIR                   "FILES WRONG_SIZE" under DIR (.delete-sync aside)
  multihost_fs.py clear DIR                   removes DIR (16 threads for the files)
  multihost_fs.py events KIND N PARTS OUT BUCKET
                                              KIND remove: N removal events for the files of
                                              `make`; KIND create: N creation events (1 KiB)
                                              for fill_bucket's keys (d{i%1000:03d}/...);
                                              KIND keys: the paths of `make`'s N files, one
                                              per line (the bare loop's input);
                                              split in PARTS contiguous files OUT.1 ... OUT.PARTS
  multihost_fs.py report RESULTS NREM NCRE RUNS HEADER
"""
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

THREADS = 16


def make(d, n, part, parts):
    for j in range(100):
        os.makedirs(os.path.join(d, f"d{j:03d}"), exist_ok=True)
    body = b"x" * 1024

    def one(i):
        fd = os.open(os.path.join(d, f"d{i % 100:03d}", f"obj{i:07d}.bin"),
                     os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)

    with ThreadPoolExecutor(THREADS) as ex:
        list(ex.map(one, range(part, n, parts)))


def count(d):
    files = wrong = 0
    for root, dirs, names in os.walk(d):
        if root == d and ".delete-sync" in dirs:
            dirs.remove(".delete-sync")
        for name in names:
            files += 1
            if os.lstat(os.path.join(root, name)).st_size != 1024:
                wrong += 1
    print(files, wrong)


def clear(d):
    if not os.path.isdir(d):
        return
    paths, dirs = [], []
    for root, ds, names in os.walk(d):
        dirs.append(root)
        paths.extend(os.path.join(root, n) for n in names)

    def rm(p):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass

    with ThreadPoolExecutor(THREADS) as ex:
        list(ex.map(rm, paths))
    for root in sorted(dirs, key=len, reverse=True):
        os.rmdir(root)


def events(kind, n, parts, out, bucket):
    files = [open(f"{out}.{p + 1}", "w") for p in range(parts)]
    per = -(-n // parts)
    for i in range(n):
        if kind == "keys":
            files[i // per].write(f"d{i % 100:03d}/obj{i:07d}.bin\n")
            continue
        if kind == "remove":
            key, name, extra = f"d{i % 100:03d}/obj{i:07d}.bin", "ObjectRemoved:Delete", {}
        else:
            key, name, extra = f"d{i % 1000:03d}/obj{i:07d}.bin", "ObjectCreated:Put", {"size": 1024}
        doc = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
               "eventTime": "2026-12-07T00:00:00.000Z", "eventName": name,
               "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                      "object": {"key": key, "sequencer": f"{i + 1:018X}", **extra}}}]}
        files[i // per].write(json.dumps(doc) + "\n")
    for f in files:
        f.close()


def tally(field, prefixes):
    """'SECONDS SUM WARNINGS' of processes whose run1.sh files start with PREFIXES; SUM adds
    up FIELD of their JSON summaries (FIELD "unlinked": the bare loop's "unlinked N, ...")."""
    starts = [float(open(p + ".start").read()) for p in prefixes]
    ends = [float(open(p + ".end").read()) for p in prefixes]
    if field == "unlinked":
        total = sum(int(open(p + ".out").read().split()[1].rstrip(",")) for p in prefixes)
    else:
        total = sum(json.load(open(p + ".out"))[field] for p in prefixes)
    warns = sum(open(p + ".err", errors="replace").read().count("is locked by another process")
                for p in prefixes)
    print(f"{max(ends) - min(starts):.3f} {total} {warns}")


def report(results, nrem, ncre, runs, header):
    # results: kind|where|journal|procs|seconds|lock_warnings
    rows = {}
    for line in open(results):
        kind, where, journal, procs, secs, warns = line.rstrip("\n").split("|")
        rows.setdefault((kind, where, journal, int(procs)), []).append((float(secs), int(warns)))
    print("# Applying events from several hosts on one cache\n")
    print(header + "\n")
    for kind, n, title in (("remove", nrem, f"{nrem:,} removal events over {nrem:,} cached files of 1 KiB in 100 folders"),
                           ("floor", nrem, f"The floor: a bare loop, lstat then unlink of the same {nrem:,} files, 16 threads per host or process (bench/unlink_floor.cc --lstat --threads 16; no state, no audit record, no fsync)"),
                           ("create", ncre, f"{ncre:,} creation events (1 KiB objects on the local RGW), journaled then downloaded")):
        keys = [k for k in rows if k[0] == kind]
        if not keys:
            continue
        print(f"## {title}\n")
        print("| cache | state-journal | hosts / processes | wall time, s | events/s | vs 1 of the same | lock waits > 5 s logged |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        one = {}
        for k in sorted(keys, key=lambda k: (k[1] != "CephFS", k[1], k[2] != "rollback", k[3])):
            secs = [s for s, _ in rows[k]]
            med = statistics.median(secs)
            rate = n / med if med > 0 else float("inf")
            if k[3] == 1:
                one[k[:3]] = rate
            base = one.get(k[:3])
            rel = f"{rate / base:.2f}x" if base and k[3] > 1 else "-"
            unit = "host" if k[1] == "CephFS" else "process"
            procs = f"{k[3]} {unit}{('es' if unit == 'process' else 's') if k[3] > 1 else ''}"
            rates = sorted(n / s for s in secs if s > 0)
            print(f"| {k[1]} | {k[2]} | {procs} | {med:.2f} ({min(secs):.2f}-{max(secs):.2f}) | "
                  f"{rate:,.0f} ({rates[0]:,.0f}-{rates[-1]:,.0f}) | {rel} | {sum(w for _, w in rows[k])} |")
        print()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "count":
        count(args[0])
    elif cmd == "clear":
        clear(args[0])
    elif cmd == "events":
        events(args[0], int(args[1]), int(args[2]), args[3], args[4])
    elif cmd == "tally":
        tally(args[0], args[1:])
    elif cmd == "report":
        report(args[0], int(args[1]), int(args[2]), args[3], args[4])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
