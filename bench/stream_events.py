#!/usr/bin/env python3
"""Sends a sustained stream of S3 notification documents to a delete-sync webhook and samples
the serve process's RSS meanwhile (for bench/serve-rss.sh).

Events alternate between a creation (ObjectCreated:Put) and a removal (ObjectRemoved:Delete)
over --keys keys named like bench/fill_bucket's (dNNN/objNNNNNNN.bin), AWS format with a
sequencer that grows per event. One keep-alive connection; the next document is sent when the
previous one is answered (200), so the rate is what the service sustains. Prints
"<seconds> <events sent>"; writes "<t>,<rss KiB>,<events sent>" lines to --samples.
"""
import argparse
import http.client
import json
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--keys", type=int, required=True)
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--samples", required=True)
    a = ap.parse_args()

    sent = 0
    done = threading.Event()
    start = time.monotonic()

    def sample():
        with open(a.samples, "w") as out:
            while not done.is_set():
                out.write(f"{time.monotonic() - start:.2f},{rss_kib(a.pid)},{sent}\n")
                out.flush()
                done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {a.token}"}
    try:
        i = 0
        while i < a.events:
            records = []
            for _ in range(min(a.records, a.events - i)):
                n = (i // 2) % a.keys
                key = f"d{n % 1000:03d}/obj{n:07d}.bin"
                name = "ObjectCreated:Put" if i % 2 == 0 else "ObjectRemoved:Delete"
                obj = {"key": key, "sequencer": f"{i + 1:018X}"}
                if i % 2 == 0:
                    obj["size"] = 1024
                records.append({"eventVersion": "2.1", "eventSource": "aws:s3",
                                "awsRegion": "us-east-1",
                                "eventTime": "2026-12-02T00:00:00.000Z", "eventName": name,
                                "s3": {"s3SchemaVersion": "1.0",
                                       "bucket": {"name": a.bucket,
                                                  "arn": f"arn:aws:s3:::{a.bucket}"},
                                       "object": obj}})
                i += 1
            body = json.dumps({"Records": records})
            for attempt in range(100):
                try:
                    conn.request("POST", "/", body, headers)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        break
                    raise RuntimeError(f"webhook answered {resp.status}")
                except (ConnectionError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
                    time.sleep(0.05)
            else:
                raise RuntimeError("webhook kept failing")
            sent = i
    finally:
        secs = time.monotonic() - start
        done.set()
        sampler.join()
    print(f"{secs:.3f} {sent}")


if __name__ == "__main__":
    main()
