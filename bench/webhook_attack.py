#!/usr/bin/env python3
"""The bucket's PUT and DELETE latency with delete-sync's webhook on RGW's synchronous push path,
quiet and under a slow-client attack (issue 19).

One phase: N PUTs then N DELETEs of small objects, each timed from the S3 call to its answer
(RGW answers only after the webhook answered its notification), then a check that the cache
followed every one (a notification RGW gave up on is lost). With --attack, while the phase runs:
30 clients send request headers a byte every 100 ms without a token, 50 connections stay silent,
and one client sends requests with a wrong token as fast as it can. A phase stops early after
--budget seconds (the old webhook could hold each PUT for as long as the attack lasted).

Prints one JSON line: {"mode", "ops", "p50_ms", "p95_ms", "max_ms", "lost", "unfinished"}.
Uses the AWS_* variables of `scripts/rgw-local.sh env`.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import threading
import time

import boto3
from botocore.config import Config


def dribbler(port, stop):
    head = b"POST / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Padding-%d: y\r\n" % i for i in range(1000))
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            i = 0
            while not stop.is_set():
                s.send(head[i:i + 1])
                i = (i + 1) % len(head)
                time.sleep(0.1)
            s.close()
        except OSError:
            time.sleep(0.1)  # cut by the server: come back


def silent(port, stop, n):
    socks = []
    while not stop.is_set():
        socks = [s for s in socks if s.fileno() >= 0]
        while len(socks) < n:
            try:
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        time.sleep(0.5)
        # Replace the ones the server closed.
        alive = []
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                continue
            alive.append(s)
        socks = alive
    for s in socks:
        s.close()


def flood(port, stop, counts):
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("POST", "/?token=wrong", body=b'{"Records":[]}',
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
            c.close()
        except OSError:
            counts["error"] = counts.get("error", 0) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ops", type=int, default=50)
    ap.add_argument("--attack", action="store_true")
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],
                      config=Config(retries={"max_attempts": 1}, read_timeout=900))
    stop = threading.Event()
    threads = []
    counts = {}
    if a.attack:
        threads += [threading.Thread(target=dribbler, args=(a.port, stop), daemon=True)
                    for _ in range(30)]
        threads.append(threading.Thread(target=silent, args=(a.port, stop, 50), daemon=True))
        threads.append(threading.Thread(target=flood, args=(a.port, stop, counts), daemon=True))
        for t in threads:
            t.start()
        time.sleep(2)  # let the attack settle in

    lat = []
    put, deleted = [], []
    keys = ["%s%s/%d" % (a.tag, "attack" if a.attack else "quiet", i) for i in range(a.ops)]

    halt = threading.Event()

    def run_ops():
        for k in keys:
            if halt.is_set():
                return
            t0 = time.monotonic()
            s3.put_object(Bucket=a.bucket, Key=k, Body=b"x")
            lat.append((time.monotonic() - t0) * 1000)
            put.append(k)
        for k in put:
            if halt.is_set():
                return
            t0 = time.monotonic()
            s3.delete_object(Bucket=a.bucket, Key=k)
            lat.append((time.monotonic() - t0) * 1000)
            deleted.append(k)

    # The S3 calls run beside the budget: a call the webhook holds (the old one could, for as
    # long as the attack lasted) is counted as not finished when the budget ends.
    ops = threading.Thread(target=run_ops, daemon=True)
    started = time.monotonic()
    ops.start()
    ops.join(a.budget)
    hung_ms = None
    if ops.is_alive():
        hung_ms = (time.monotonic() - started) * 1000
    done = len(lat)
    halt.set()
    stop.set()
    if ops.is_alive():
        ops.join(600)  # the held call returns once the attack stops
    put = put[:]
    # What the cache should look like: the deleted keys gone, the others there.
    deadline = time.monotonic() + 30
    while True:
        lost = [k for k in put if os.path.exists(os.path.join(a.cache, k)) != (k not in deleted)]
        if not lost or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lat = sorted(lat[:done] + ([hung_ms] if hung_ms is not None else []))
    out = {
        "mode": "attack" if a.attack else "quiet",
        "ops": done,
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        "max_ms": round(lat[-1], 1) if lat else None,
        "lost": len(lost),
        "unfinished": 2 * a.ops - done,
        "refused_401": counts.get(401, 0),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
