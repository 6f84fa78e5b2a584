#!/usr/bin/env python3
"""Decodes a PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes) with the standard
library and prints: width height non_white_pixels pixels_of_color(RRGGBB, +-8 per channel).
Used by tests/integration/ops_test.cc to check that the status page rendered."""
import struct
import sys
import zlib


def main():
    path, color = sys.argv[1], sys.argv[2]
    want = tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                sys.exit("unsupported PNG (depth %d, color type %d)" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    non_white = matching = 0
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        for x in range(width):
            r, g, bl = line[x * bpp:x * bpp + 3]
            if (r, g, bl) != (255, 255, 255):
                non_white += 1
            if abs(r - want[0]) <= 8 and abs(g - want[1]) <= 8 and abs(bl - want[2]) <= 8:
                matching += 1
        prev = line
    print(width, height, non_white, matching)


if __name__ == "__main__":
    main()
