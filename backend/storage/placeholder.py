"""The image served in place of a cover or avatar while S3 is down (ARCHITECTURE §8).

A 64×64 PNG drawn here with ``zlib`` and ``struct``: a muted teal square with a lighter sun and
hill, the usual "picture" sign. Built once at import; no files, no I/O.
"""

from __future__ import annotations

import struct
import zlib

PLACEHOLDER_CONTENT_TYPE = "image/png"
PLACEHOLDER_SIZE = 64

_BACKGROUND = (0x5F, 0x8A, 0x8B)
_SHAPE = (0xA9, 0xC4, 0xC4)


def _pixel(x: int, y: int) -> tuple[int, int, int]:
    in_sun = (x - 44) ** 2 + (y - 20) ** 2 <= 7**2
    # A hill rising from the bottom edge: |x - 26| <= (y - 22), below y = 22.
    in_hill = y >= 22 and abs(x - 26) <= y - 22
    return _SHAPE if in_sun or in_hill else _BACKGROUND


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def _render_png(size: int) -> bytes:
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type: none
        for x in range(size):
            rows.extend(_pixel(x, y))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


PLACEHOLDER_PNG: bytes = _render_png(PLACEHOLDER_SIZE)
"""A small valid PNG (``image/png``, 64×64) for image reads while the object store is down."""
