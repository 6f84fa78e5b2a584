#!/usr/bin/env python3
"""An independent verifier of delete-sync audit logs, written from docs/AUDIT_FORMAT.md alone.

usage: verify_reference.py LOG [KEY_FILE]
Exit 0 and "intact: N records, head hash H" when the chain is intact; exit 1 and
"BROKEN at FILE:LINE (seq N): REASON" on the first bad record.
"""
import hashlib
import hmac
import json
import os
import re
import sys

HEX64 = re.compile(r"[0-9a-f]{64}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
TYPE = re.compile(r"[a-z][a-z0-9-]{0,63}")


class Broken(Exception):
    pass


def chain_files(path):
    """Rotated files <path>.<A>-<B> by A, then <path> itself when it exists."""
    folder, base = os.path.split(path)
    rotated = []
    for name in os.listdir(folder or "."):
        m = re.fullmatch(re.escape(base) + r"\.([1-9][0-9]{0,18})-([1-9][0-9]{0,18})", name)
        if m:
            rotated.append((int(m[1]), int(m[2]), path + name[len(base):]))
    rotated.sort()
    files = [(f, a, b) for a, b, f in rotated]
    if os.path.exists(path):
        files.append((path, None, None))
    if not files:
        raise Broken(f"no audit log at {path}")
    return files


def no_duplicates(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def integers_only(v):
    if isinstance(v, float):
        return False
    if isinstance(v, dict):
        return all(integers_only(x) for x in v.values())
    if isinstance(v, list):
        return all(integers_only(x) for x in v)
    return True


def check_record(raw, expected_seq, prev_hash, key):
    """Returns the reason `raw` (a line without its newline) is bad, or None."""
    try:
        r = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON"
    if not isinstance(r, dict) or list(r)[:4] != ["seq", "time", "prev", "type"]:
        return "does not begin with seq, time, prev, type"
    if not integers_only(r):
        return "holds a floating-point number"
    if json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode("utf-8") != raw:
        return "not in canonical form"
    seq = r["seq"]
    if type(seq) is not int or seq != expected_seq:
        return f"seq not consecutive: expected {expected_seq}, found {seq}"
    if not isinstance(r["time"], str) or not TIME.fullmatch(r["time"]):
        return "bad time"
    if not isinstance(r["type"], str) or not TYPE.fullmatch(r["type"]):
        return "bad type"
    if r["prev"] != prev_hash:
        return "prev hash mismatch"
    if "hmac" in r:
        if list(r)[-1] != "hmac" or not isinstance(r["hmac"], str) or not HEX64.fullmatch(r["hmac"]):
            return "bad hmac member"
    if key is not None:
        if "hmac" not in r:
            return "HMAC missing"
        mac = hmac.new(key, raw[:-75], hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, r["hmac"]):
            return "HMAC mismatch"
    return None


def verify(path, key=None):
    seq, prev = 1, "0" * 64
    for name, first, last in chain_files(path):
        with open(name, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        complete = lines[-1] == b""
        if complete:
            lines.pop()
        first_here = seq
        for number, raw in enumerate(lines, 1):
            if number == len(lines) and not complete:
                raise Broken(f"{name}:{number} (seq {seq}): truncated record (no newline)")
            why = check_record(raw, seq, prev, key)
            if why:
                raise Broken(f"{name}:{number} (seq {seq}): {why}")
            prev, seq = hashlib.sha256(raw).hexdigest(), seq + 1
        if first is not None and (not lines or first_here != first or seq - 1 != last):
            raise Broken(f"{name}:{len(lines) + 1} (seq {seq}): its name says seq {first}-{last}")
    return seq - 1, prev


def main():
    key = None
    if len(sys.argv) > 2:
        with open(sys.argv[2], "rb") as f:
            key = f.read().rstrip(b"\r\n")
        if not key:
            sys.exit("empty key file")
    try:
        count, head = verify(sys.argv[1], key)
    except Broken as e:
        print(f"BROKEN at {e}", file=sys.stderr)
        sys.exit(1)
    print(f"intact: {count} records, head hash {head}")


if __name__ == "__main__":
    main()
