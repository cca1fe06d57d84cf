"""The text of a :data:`~monitor.store.schema.day_strips` row: one component's settled days.

A small JSON object whose columns are packed arrays in base64, day after day from ``first``
(days nothing was checked in hold zeros, and NaN for the average)::

    {"first": 1747008000, "checks": "<int32 LE>", "up": "<int32 LE>", "worst": "<int8>",
     "average": "<float64 LE>"}

Packed rather than JSON lists: a status page decodes 50 strips of 120 days on every render, and
unpacking an array costs next to nothing where parsing 30,000 JSON numbers cost ~2 ms. A strip is
a copy of roll-ups (rebuilt daily, never the only record), so its form can change freely.

Strips written by the first version of the store (a JSON list of ``[start, checks, up, worst,
average]`` per day) still read; the daemon rewrites every strip in this form at its next daily
rebuild.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from array import array
from typing import Any

from monitor.store.models import BarSeries

DAY = 86400
_TYPES = {"checks": "i", "up": "i", "worst": "b", "average": "d"}


def encode(strip: BarSeries) -> str:
    average = [math.nan if value is None else value for value in strip.average]
    columns: dict[str, list[Any]] = {
        "checks": strip.checks,
        "up": strip.up,
        "worst": strip.worst,
        "average": average,
    }
    packed = {name: _pack(_TYPES[name], values) for name, values in columns.items()}
    return json.dumps({"first": strip.first, **packed}, separators=(",", ":"))


def decode(text: str) -> BarSeries:
    data: Any = json.loads(text)
    if isinstance(data, list):
        return _from_days(data)
    checks, up, worst, average = (_unpack(_TYPES[name], data[name]) for name in _TYPES)
    return BarSeries(
        data["first"],
        DAY,
        checks,
        up,
        worst,
        [None if value != value else value for value in average],  # NaN: no average
    )


def _pack(typecode: str, values: list[Any]) -> str:
    packed = array(typecode, values)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _unpack(typecode: str, text: str) -> list[Any]:
    values = array(typecode, base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def _from_days(days: list[list[Any]]) -> BarSeries:
    """The first version's form: ``[start, checks, up, worst, average]`` per day, oldest first,
    days without checks left out."""
    if not days:
        return BarSeries.blank(0, DAY, 0)
    first = days[0][0]
    strip = BarSeries.blank(first, DAY, (days[-1][0] - first) // DAY + 1)
    for start, checks, up, worst, average in days:
        at = (start - first) // DAY
        strip.checks[at], strip.up[at], strip.worst[at], strip.average[at] = (
            checks,
            up,
            worst,
            average,
        )
    return strip
