"""Writes that keep the store bounded and quick to read: retention of raw checks and roll-ups,
and the daily rebuild of day strips (:mod:`monitor.store.strips`)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, tuple_

from monitor.store.models import BarSeries
from monitor.store.reading.day_strips import STRIP_DAYS, settled_day
from monitor.store.reading.rollups import ROLLUP_FIGURES
from monitor.store.schema import (
    checks,
    day_strips,
    deliveries,
    maintenances,
    public_messages,
    replica_checks,
    replicas,
    rollups,
    service_checks,
    silences,
    subscribers,
)
from monitor.store.strips import encode as strip_json
from monitor.store.writing.base import DAY, WriteBase

RETENTION_CHUNK = 10_000
"""Rows of one table deleted in one transaction at most. Retention of a week of a large fleet's
replica checks is millions of rows: in one transaction it held SQLite's write lock (and, before
fences took the lease row ``FOR KEY SHARE``, PostgreSQL's lease row) for seconds, longer than a
lease renewal may wait, so the leader stepped down and the retention was rolled back, again at
each term. A chunk of 10,000 rows takes tens of milliseconds."""
SQLITE_PAUSE = 0.15
"""Seconds between two chunks on SQLite: longer than SQLite's busy handler sleeps between two
tries for the write lock (100 ms at most), so a renewal or a check waiting for the lock takes it
before the next chunk does (back to back, the chunks would win it nearly every time)."""
UNCONFIRMED_DAYS = 7.0
"""Days an address that never confirmed is kept after its last confirmation request, when the
caller does not say (``[subscriptions] confirm_within`` does not reach the store; its default is
2 days, so a link sent is dead long before)."""
UNSUBSCRIBED_DAYS = 30.0
"""Days an unsubscribed address is kept (its last deliveries' record), then forgotten: no
address is kept longer than it serves."""


class RetentionWrites(WriteBase):
    retention_chunk: int = RETENTION_CHUNK
    """Rows per table per transaction of :meth:`apply_retention` (tests make it small)."""

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
        self,
        now: float,
        *,
        raw_days: float,
        hourly_days: float,
        daily_days: float,
        unconfirmed_days: float = UNCONFIRMED_DAYS,
    ) -> dict[str, int]:
        """Delete raw checks (the targets' and their replicas'), hourly and daily roll-ups older
        than their windows, the rows of replicas retired (or not seen) for longer than the
        raw checks are kept: nothing of them would be left to show, and silences that ended as
        long ago (the incident timeline keeps who silenced what); and the public side's rows
        (:meth:`_public_retention`).

        Rows go :attr:`retention_chunk` at a time, each chunk its own fenced transaction, so no
        write holds the store for long. A retention cut short (the lease lost, the store gone)
        keeps the chunks it committed: they were past their window anyway, and the next run
        deletes the rest."""
        cutoff = now - raw_days * DAY
        removed: dict[str, int] = {}
        # A check's service rows first: they are the check's (and cascade with it otherwise,
        # one row at a time).
        await self._delete_in_chunks(service_checks, service_checks.c.at < cutoff)
        removed["checks"] = await self._delete_in_chunks(checks, checks.c.at < cutoff)
        removed["replica_checks"] = await self._delete_in_chunks(
            replica_checks, replica_checks.c.at < cutoff
        )
        removed["replicas"] = await self._delete_in_chunks(
            replicas, or_(replicas.c.retired_at < cutoff, replicas.c.checked_at < cutoff)
        )
        removed["silences"] = await self._delete_in_chunks(silences, silences.c.ends_at < cutoff)
        for period, days in (("hour", hourly_days), ("day", daily_days)):
            removed[f"{period}_rollups"] = await self._delete_in_chunks(
                rollups, rollups.c.period == period, rollups.c.start < now - days * DAY
            )
        removed.update(
            await self._public_retention(
                now,
                raw_cutoff=cutoff,
                hourly_cutoff=now - hourly_days * DAY,
                daily_cutoff=now - daily_days * DAY,
                unconfirmed_cutoff=now - unconfirmed_days * DAY,
            )
        )
        return removed

    async def _public_retention(
        self,
        now: float,
        *,
        raw_cutoff: float,
        hourly_cutoff: float,
        daily_cutoff: float,
        unconfirmed_cutoff: float,
    ) -> dict[str, int]:
        """What the public side keeps (#15), each in chunks:

        - deliveries finished (sent, failed) before the raw checks' horizon: the send log is
          as fresh as the checks it reported on;
        - messages made before the hourly roll-ups' horizon (their deliveries, pending or not,
          go with them: the sender gave up on those long before);
        - addresses: never confirmed since :data:`UNCONFIRMED_DAYS` (or ``unconfirmed_days``)
          after their last confirmation request, unsubscribed since :data:`UNSUBSCRIBED_DAYS`
          (privacy: an address is kept only while it serves), their deliveries with them;
        - windows that ended before the daily roll-ups' horizon (their bars are gone too)."""
        removed: dict[str, int] = {}
        removed["deliveries"] = await self._delete_in_chunks(
            deliveries,
            deliveries.c.state != "pending",
            deliveries.c.done_at < raw_cutoff,
        )
        # Fanned out or not (a store whose monitor sends nothing queues them all the same):
        # news that old is told to nobody any more.
        old_messages = public_messages.c.at < hourly_cutoff
        # Their deliveries first, in chunks: a cascade would delete them in the message's chunk.
        removed["deliveries"] += await self._delete_in_chunks(
            deliveries,
            deliveries.c.message_id.in_(select(public_messages.c.id).where(old_messages)),
        )
        removed["public_messages"] = await self._delete_in_chunks(public_messages, old_messages)
        lapsed = or_(
            and_(
                subscribers.c.confirmed_at.is_(None),
                func.coalesce(subscribers.c.confirm_sent_at, subscribers.c.created_at)
                < unconfirmed_cutoff,
            ),
            subscribers.c.unsubscribed_at < now - UNSUBSCRIBED_DAYS * DAY,
        )
        removed["deliveries"] += await self._delete_in_chunks(
            deliveries,
            deliveries.c.subscriber_id.in_(select(subscribers.c.id).where(lapsed)),
        )
        removed["subscribers"] = await self._delete_in_chunks(subscribers, lapsed)
        removed["maintenances"] = await self._delete_in_chunks(
            maintenances, maintenances.c.ends_at < daily_cutoff
        )
        return removed

    async def _delete_in_chunks(self, table: Table, *where: ColumnElement[bool]) -> int:
        """Delete ``table``'s rows matching ``where``, a chunk of them per fenced transaction;
        how many were deleted."""
        chunk = max(self.retention_chunk, 1)
        key = list(table.primary_key.columns)
        chosen = select(*key).where(*where).limit(chunk)
        matching = key[0].in_(chosen) if len(key) == 1 else tuple_(*key).in_(chosen)
        statement = delete(table).where(matching)
        total = 0
        while True:
            async with self._begin() as connection:
                deleted = (await connection.execute(statement)).rowcount
            total += deleted
            if deleted < chunk:
                return total
            if self._dialect == "sqlite":
                await self.clock.sleep(SQLITE_PAUSE)
