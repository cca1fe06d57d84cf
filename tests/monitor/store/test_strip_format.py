"""The packed form of a day strip, pinned byte for byte: a strip written on one machine must read
the same on any other (little-endian int32, int8 and float64 whatever the host's order)."""

from __future__ import annotations

from monitor.store.models import BarSeries
from monitor.store.strips import decode, encode

DAY = 86400
STRIP = BarSeries(
    first=1_747_008_000,
    length=DAY,
    checks=[8640, 0, 1],
    up=[8639, 0, 1],
    worst=[3, 0, 1],
    average=[41.5, None, 2.0],
)
# struct.pack("<3i", 8640, 0, 1), ("<3i", 8639, 0, 1), ("<3b", 3, 0, 1),
# ("<3d", 41.5, nan, 2.0), each in base64.
TEXT = (
    '{"first":1747008000,"checks":"wCEAAAAAAAABAAAA","up":"vyEAAAAAAAABAAAA",'
    '"worst":"AwAB","average":"AAAAAADAREAAAAAAAAD4fwAAAAAAAABA"}'
)


def test_encoded_bytes_are_pinned() -> None:
    assert encode(STRIP) == TEXT


def test_decoded_from_the_pinned_bytes() -> None:
    assert decode(TEXT) == STRIP
