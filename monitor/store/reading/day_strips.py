"""Reads of many components' daily figures at once (a status page's 90 days of 50): each
component's day strip (:mod:`monitor.store.strips`), topped up from the roll-ups.

A store the daemon has not upgraded yet (before revision 0003) has no ``day_strips_v2``, and a
status page is upgraded on its own in a rolling deploy: there the roll-ups answer alone, as they
did before the strips (the same figures, only slower)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.store.errors import StoreNotInitialised
from monitor.store.models import BarSeries, UptimeBar
from monitor.store.reading.base import DAY, PERIODS, ReadBase
from monitor.store.reading.rollups import ROLLUP_FIGURES
from monitor.store.schema import day_strips, rollups
from monitor.store.strips import decode as decode_strip

STRIP_DAYS = 120
"""Days a day strip holds (a 90-day view, and a month to spare)."""


def settled_day(now: float) -> int:
    """The start of the newest day a day strip may hold: the day before yesterday, whose
    roll-ups no check still in flight or in a write window can change."""
    return int(now // DAY) * DAY - 2 * DAY


class DayStripReads(ReadBase):
    def clear_memos(self) -> None:
        """Forget decoded strips (a benchmark's first read after start)."""
        self._strips.clear()

    def _strip(self, key: tuple[str, str], text: str) -> BarSeries:
        """The strip ``text`` decoded (only read: see :func:`_overlay`)."""
        known = self._strips.get(key)
        if known is None or known[0] != text:
            known = self._strips[key] = (text, decode_strip(text))
        return known[1]

    async def bars_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], list[UptimeBar]]:
        """``bars`` for many components at once (see :meth:`series_many`)."""
        series = await self.series_many(components, period=period, count=count, now=now)
        return {key: figures.bars() for key, figures in series.items()}

    async def series_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], BarSeries]:
        """What ``bars`` answers, for many components at once and as columns (a status
        page's 90 days of 50): daily figures from each component's day strip where it has one,
        and from the roll-ups for the days after it (and for components without one)."""
        if not components:
            return {}
        length = PERIODS[period]
        last = int(now // length) * length
        first = last - (count - 1) * length

        def read(connection: Connection, use_strips: bool) -> dict[tuple[str, str], BarSeries]:
            found = {key: BarSeries.blank(first, length, count) for key in components}
            covered: dict[tuple[str, str], int] = {}
            if use_strips:
                strips = connection.execute(
                    select(
                        day_strips.c.target,
                        day_strips.c.service,
                        day_strips.c.last_day,
                        day_strips.c.days,
                    )
                )
                for target, service, last_day, days in strips:
                    series = found.get((target, service))
                    if series is not None:
                        _overlay(series, self._strip((target, service), days))
                        covered[(target, service)] = last_day
            since = max(first, min(covered.get(key, first - length) for key in found) + length)
            rows = connection.execute(
                select(*ROLLUP_FIGURES).where(
                    rollups.c.period == period,
                    rollups.c.start >= since,
                    rollups.c.start <= last,
                )
            )
            # The roll-ups are the truth: where both have a day, theirs wins.
            for target, service, start, checks_, up, worst, latency_sum, latency_count in rows:
                series = found.get((target, service))
                if series is not None:
                    series.put(start, checks_, up, worst, latency_sum, latency_count)
            return found

        with_strips = period == "day" and count <= STRIP_DAYS
        try:
            return await self._read(lambda connection: read(connection, with_strips))
        except StoreNotInitialised:
            if not with_strips:
                raise
        # No strip table (if the roll-ups are missing too, the read below raises in turn). Asked
        # again on every read, on a connection of its own (a failed statement spoils a PostgreSQL
        # transaction), so the strips are read as soon as the daemon has upgraded the store.
        return await self._read(lambda connection: read(connection, False))


def _overlay(series: BarSeries, strip: BarSeries) -> None:
    """Copy the days ``series`` and ``strip`` share into ``series`` (as slices, not day by day)."""
    skip = (series.first - strip.first) // series.length  # days of the strip before the series
    lo = max(0, -skip)
    hi = min(len(series), len(strip) - skip)
    if lo >= hi:
        return
    theirs = slice(lo + skip, hi + skip)
    series.checks[lo:hi] = strip.checks[theirs]
    series.up[lo:hi] = strip.up[theirs]
    series.worst[lo:hi] = strip.worst[theirs]
    series.average[lo:hi] = strip.average[theirs]
