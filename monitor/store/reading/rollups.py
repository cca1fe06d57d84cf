"""Reads of the hourly and daily roll-ups: uptime bars, uptime over a window, response times.

Long windows read roll-ups only: a 90-day view of 50 services is 4,500 daily rows, not millions
of raw checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from monitor.store.models import TARGET_COMPONENT, LatencyPoint, Status, UptimeBar
from monitor.store.reading.base import HOUR, PERIODS, ReadBase
from monitor.store.schema import rollups

ROLLUP_FIGURES = (
    rollups.c.target,
    rollups.c.service,
    rollups.c.start,
    rollups.c.checks,
    rollups.c.up,
    rollups.c.worst,
    rollups.c.latency_sum,
    rollups.c.latency_count,
)
"""What a roll-up row gives a :class:`BarSeries` (``put``), after its component's key."""


class RollupReads(ReadBase):
    async def bars(
        self,
        target: str,
        service: str = TARGET_COMPONENT,
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> list[UptimeBar]:
        """One bar per period for the last ``count`` periods (oldest first; empty periods too)."""
        length = PERIODS[period]
        last = int(now // length) * length
        first = last - (count - 1) * length
        rows = await self._mappings(
            select(rollups).where(
                rollups.c.target == target,
                rollups.c.service == service,
                rollups.c.period == period,
                rollups.c.start >= first,
            )
        )
        return _bars({row["start"]: row for row in rows}, first, last, length)

    async def latency_series_many(
        self, components: Sequence[tuple[str, str]], *, hours: int = 24, now: float
    ) -> dict[tuple[str, str], list[LatencyPoint]]:
        """:meth:`latency_series` for many components in one query."""
        if not components:
            return {}
        first = int(now // HOUR) * HOUR - (hours - 1) * HOUR
        rows = await self._rows(
            select(
                rollups.c.target,
                rollups.c.service,
                rollups.c.start,
                rollups.c.latency_sum,
                rollups.c.latency_count,
                rollups.c.latency_max,
            ).where(
                # Coarse (exact below), and what lets the primary key lead the search.
                rollups.c.target.in_({target for target, _ in components}),
                rollups.c.service.in_({service for _, service in components}),
                rollups.c.period == "hour",
                rollups.c.start >= first,
                rollups.c.latency_count > 0,
            )
            # Sorted here, not by the query: with ORDER BY, SQLite walks the (period, start)
            # index over every component's hours instead of the primary key over these.
        )
        series: dict[tuple[str, str], list[LatencyPoint]] = {key: [] for key in components}
        for target, service, start, latency_sum, latency_count, latency_max in sorted(
            rows, key=itemgetter(2)
        ):
            points = series.get((target, service))
            if points is not None:
                points.append(LatencyPoint(float(start), latency_sum / latency_count, latency_max))
        return series

    async def latency_series(
        self, target: str, service: str = TARGET_COMPONENT, *, hours: int = 24, now: float
    ) -> list[LatencyPoint]:
        """Hourly average and maximum response time over the last ``hours`` (oldest first)."""
        first = int(now // HOUR) * HOUR - (hours - 1) * HOUR
        rows = await self._mappings(
            select(rollups)
            .where(
                rollups.c.target == target,
                rollups.c.service == service,
                rollups.c.period == "hour",
                rollups.c.start >= first,
                rollups.c.latency_count > 0,
            )
            .order_by(rollups.c.start)
        )
        return [
            LatencyPoint(float(r["start"]), r["latency_sum"] / r["latency_count"], r["latency_max"])
            for r in rows
        ]


def _bars(found: dict[int, RowMapping], first: int, last: int, length: int) -> list[UptimeBar]:
    bars = []
    for start in range(first, last + 1, length):
        row = found.get(start)
        bars.append(
            _blank(start)
            if row is None
            else _bar(
                start,
                row["checks"],
                row["up"],
                row["worst"],
                row["latency_sum"],
                row["latency_count"],
            )
        )
    return bars


def _bar(
    start: int, checks: int, up: int, worst: int, latency_sum: float, latency_count: int
) -> UptimeBar:
    """One roll-up row as a bar."""
    average = latency_sum / latency_count if latency_count else None
    return UptimeBar(float(start), checks, up, Status.from_severity(worst), average)


def _blank(start: int) -> UptimeBar:
    """A period nothing was checked in."""
    return UptimeBar(float(start), 0, 0, Status.UNKNOWN, None)
