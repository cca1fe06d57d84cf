"""The overview's uptime figures (the last day, week and month) of many components at once.

:meth:`HistoryRead.uptime` answers for one component and one window, a query each: three per
component is thousands for a fleet. The same figures come from one read of each period's
roll-ups for every component (:meth:`HistoryRead.series_many`), summed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from monitor.store import BarSeries, HistoryRead

HOUR = 3600.0
DAY = 86400.0
UPTIME_WINDOWS = (DAY, 7 * DAY, 30 * DAY)

Uptimes = tuple[float | None, float | None, float | None]
"""Uptime in percent over each of :data:`UPTIME_WINDOWS` (None: no check in it)."""


async def read_uptimes(
    reader: HistoryRead, components: Sequence[tuple[str, str]], now: float
) -> dict[tuple[str, str], Uptimes]:
    """What :meth:`HistoryRead.uptime` answers for each window, from one read of each period's
    roll-ups for every component (a window is the periods that lie wholly inside it, and the
    one now under way)."""
    spans = [_periods(window, now) for window in UPTIME_WINDOWS]
    longest: dict[str, int] = {}
    for period, count in spans:
        longest[period] = max(longest.get(period, 0), count)
    series = {
        period: await reader.series_many(components, period=period, count=count, now=now)
        for period, count in longest.items()
    }
    found: dict[tuple[str, str], Uptimes] = {}
    for key in components:
        day, week, month = (_uptime(series[period].get(key), count) for period, count in spans)
        found[key] = (day, week, month)
    return found


def _periods(window: float, now: float) -> tuple[str, int]:
    """The period :meth:`HistoryRead.uptime` reads ``window`` in, and how many of them: from the
    first that starts inside the window up to the one ``now`` is in."""
    period = "hour" if window <= 2 * DAY else "day"
    length = HOUR if period == "hour" else DAY
    first = math.ceil((now - window) / length) * length
    last = int(now // length) * length
    return period, max(1, int((last - first) // length) + 1)


def _uptime(series: BarSeries | None, count: int) -> float | None:
    if series is None:
        return None
    checks = sum(series.checks[-count:])
    return 100.0 * sum(series.up[-count:]) / checks if checks else None
