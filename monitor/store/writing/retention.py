"""Writes that keep the store bounded and quick to read: retention of raw checks and roll-ups,
and the daily rebuild of day strips (:mod:`monitor.store.strips`)."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select

from monitor.store.models import BarSeries
from monitor.store.reading.day_strips import STRIP_DAYS, settled_day
from monitor.store.reading.rollups import ROLLUP_FIGURES
from monitor.store.schema import (
    checks,
    day_strips,
    replica_checks,
    replicas,
    rollups,
    service_checks,
)
from monitor.store.strips import encode as strip_json
from monitor.store.writing.base import DAY, WriteBase


class RetentionWrites(WriteBase):
    async def compact_day_strips(self, now: float) -> int:
        """Rebuild every component's :data:`~monitor.store.schema.day_strips` row from the daily
        roll-ups of its settled days, once a day (a no-op when they are current); the number of
        strips written."""
        through = settled_day(now)
        first = through - (STRIP_DAYS - 1) * DAY
        async with self._connect() as connection:
            current = await connection.scalar(select(func.min(day_strips.c.last_day)))
            if current is not None and current >= through:
                return 0
            rows = (
                await connection.execute(
                    select(*ROLLUP_FIGURES)
                    .where(
                        rollups.c.period == "day",
                        rollups.c.start >= first,
                        rollups.c.start <= through,
                    )
                    .order_by(rollups.c.start)
                )
            ).all()
        strips: dict[tuple[str, str], BarSeries] = {}
        for target, service, start, checks_, up, worst, latency_sum, latency_count in rows:
            strip = strips.get((target, service))
            if strip is None:  # its first settled day in the window (rows come oldest first)
                count = (through - start) // DAY + 1
                strip = strips[(target, service)] = BarSeries.blank(start, DAY, count)
            strip.put(start, checks_, up, worst, latency_sum, latency_count)
        if not strips:
            return 0
        statement = self._insert(day_strips)
        async with self._begin() as connection:
            # Components with no settled day in the window any more lose their strip.
            await connection.execute(delete(day_strips))
            await connection.execute(
                statement,
                [
                    {
                        "target": target,
                        "service": service,
                        "last_day": through,
                        "days": strip_json(strip),
                    }
                    for (target, service), strip in strips.items()
                ],
            )
        return len(strips)

    async def apply_retention(
        self, now: float, *, raw_days: float, hourly_days: float, daily_days: float
    ) -> dict[str, int]:
        """Delete raw checks (the targets' and their replicas'), hourly and daily roll-ups older
        than their windows, and the rows of replicas retired (or not seen) for longer than the
        raw checks are kept: nothing of them would be left to show."""
        removed: dict[str, int] = {}
        async with self._begin() as connection:
            cutoff = now - raw_days * DAY
            await connection.execute(delete(service_checks).where(service_checks.c.at < cutoff))
            result = await connection.execute(delete(checks).where(checks.c.at < cutoff))
            removed["checks"] = result.rowcount
            result = await connection.execute(
                delete(replica_checks).where(replica_checks.c.at < cutoff)
            )
            removed["replica_checks"] = result.rowcount
            result = await connection.execute(
                delete(replicas).where(
                    or_(replicas.c.retired_at < cutoff, replicas.c.checked_at < cutoff)
                )
            )
            removed["replicas"] = result.rowcount
            for period, days in (("hour", hourly_days), ("day", daily_days)):
                result = await connection.execute(
                    delete(rollups).where(
                        rollups.c.period == period, rollups.c.start < now - days * DAY
                    )
                )
                removed[f"{period}_rollups"] = result.rowcount
        return removed
