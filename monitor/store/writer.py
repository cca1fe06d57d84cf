"""The daemon's side of the store: checks with their roll-ups and component states, incidents
and alerts, retention.

A check is committed with its roll-up increments and its component states in one transaction, so
a ``kill -9`` at any moment loses only checks whose ``record_check`` had not returned, and never
leaves a roll-up counting a check that is not stored (or the other way round).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.batch import (
    Row,
    StateRows,
    check_row,
    rollup_rows,
    service_rows,
    state_rows,
)
from monitor.store.models import (
    TARGET_COMPONENT,
    AlertState,
    BarSeries,
    CheckRecord,
    Component,
    IncidentEvent,
    IncidentState,
    Status,
)
from monitor.store.reader import ROLLUP_FIGURES, STRIP_DAYS, HistoryReader, settled_day
from monitor.store.schema import (
    alerts,
    checks,
    component_states,
    components,
    day_strips,
    incident_events,
    incidents,
    revisions,
    rollups,
    service_checks,
)
from monitor.store.strips import encode as strip_json
from shared.resilience import SYSTEM_CLOCK, Clock

DAY = 86400


class HistoryWriter:
    """Writes to the store. Checks are group-committed: a check that arrives while another
    transaction is being written (or within ``batch_window`` seconds) goes with the others in the
    next one, one statement per table, so a thousand targets cost a few transactions a second
    rather than a thousand. ``record_check`` still returns only once its check is committed."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_window: float = 0.0,
        max_batch: int = 500,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._dialect = engine.dialect.name
        self.batch_window = batch_window
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record_check(
        self, record: CheckRecord, *, new_components: Sequence[Component] = ()
    ) -> CheckRecord:
        """Store ``record`` with its roll-up increments and component states, and add
        ``new_components`` (services the check found) to the catalogue in the same transaction;
        return once it has committed (raise if it could not be). A caller that gives up does not
        take its check out of the batch.

        Returns the check as stored: ``record``, or, if the database refused a value in it, the
        failed check stored in its place (:func:`refused_check`, without the new components)."""
        future: asyncio.Future[CheckRecord] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(record, tuple(new_components), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="history-writer")
            self._flusher.add_done_callback(self._flusher_done)
        return await future

    async def flush(self) -> None:
        """Wait until every check handed to :meth:`record_check` so far is settled (written,
        failed, or dropped because the writer was cancelled)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    async def _flush(self) -> None:
        if self.batch_window > 0:
            await self.clock.sleep(self.batch_window)
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: len(batch)]
            await self._commit(batch)

    def _flusher_done(self, task: asyncio.Task[None]) -> None:
        """However the flusher ended (done, or cancelled before or while it ran), nobody may
        wait for ever on what it left; a newer flusher, if one started, owns what is pending."""
        if self._flusher is task:
            self._flusher = None
            for pending in self._pending:
                pending.future.cancel()
            self._pending.clear()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            try:
                await self._write_checks(batch)
            except Exception as error:
                if _store_failing(error):
                    # The database itself is failing (gone, locked, out of connections):
                    # retrying check by check would only stall the writer longer.
                    for pending in batch:
                        _settle(pending.future, error)
                    return
                # A check the database refuses must not sink the others: one by one (a check
                # alone is not tried again as it is).
                await self._commit_one_by_one(batch, refused=batch[0] if len(batch) == 1 else None)
            else:
                for pending in batch:
                    _settle(pending.future, pending.record)
        finally:
            for pending in batch:  # cancelled part-way
                if not pending.future.done():
                    pending.future.cancel()

    async def _commit_one_by_one(
        self, batch: list[_Pending], *, refused: _Pending | None = None
    ) -> None:
        """Each check in its own transaction; one the database refuses for its data (or
        ``refused``, known to be) is stored as a failed check of its target
        (:func:`refused_check`), so the target's history has no hole and its incidents and alerts
        see a failure."""
        for n, pending in enumerate(batch):
            if pending is not refused:
                try:
                    await self._write_checks([pending])
                except Exception as error:
                    if _store_failing(error):
                        for rest in batch[n:]:
                            _settle(rest.future, error)
                        return
                else:
                    _settle(pending.future, pending.record)
                    continue
            stand_in = refused_check(pending.record)
            try:
                await self._write_checks([_Pending(stand_in, (), pending.future)])
            except Exception as again:
                _settle(pending.future, again)
            else:
                _settle(pending.future, stand_in)

    async def _write_checks(self, batch: Sequence[_Pending]) -> None:
        records = [pending.record for pending in batch]
        added = [c for pending in batch for c in pending.new_components]
        async with self.engine.begin() as connection:
            ids = (
                await connection.execute(
                    insert(checks).returning(checks.c.id, sort_by_parameter_order=True),
                    [check_row(record) for record in records],
                )
            ).scalars()
            services = [
                row
                for record, check_id in zip(records, ids, strict=True)
                for row in service_rows(record, check_id)
            ]
            if services:
                await connection.execute(insert(service_checks), services)
            await self._bump_rollups(connection, rollup_rows(records))
            await self._update_states(connection, state_rows(records))
            if added:
                await self._upsert_components(connection, added)
                await self._revise(connection, "catalogue")

    async def _bump_rollups(self, connection: AsyncConnection, rows: list[Row]) -> None:
        statement = self._insert(rollups)
        excluded = statement.excluded
        greatest = func.greatest if self._dialect == "postgresql" else func.max
        statement = statement.on_conflict_do_update(
            index_elements=["target", "service", "period", "start"],
            set_={
                "checks": rollups.c.checks + excluded.checks,
                "up": rollups.c.up + excluded.up,
                "worst": greatest(rollups.c.worst, excluded.worst),
                "latency_sum": rollups.c.latency_sum + excluded.latency_sum,
                "latency_count": rollups.c.latency_count + excluded.latency_count,
                "latency_max": greatest(rollups.c.latency_max, excluded.latency_max),
            },
        )
        await connection.execute(statement, rows)

    async def _update_states(self, connection: AsyncConnection, rows: StateRows) -> None:
        for batch, keep_since in ((rows.continuing, True), (rows.changed, False)):
            if not batch:
                continue
            statement = self._insert(component_states)
            excluded = statement.excluded
            since = (
                case(
                    (component_states.c.status == excluded.status, component_states.c.since),
                    else_=excluded.since,
                )
                if keep_since
                else excluded.since
            )
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["target", "service"],
                    set_={
                        "status": excluded.status,
                        "since": since,
                        "checked_at": excluded.checked_at,
                    },
                    # A check written late (older than the state) does not move it back.
                    where=component_states.c.checked_at <= excluded.checked_at,
                ),
                batch,
            )

    async def backfill_states(self) -> int:
        """Fill ``component_states`` from the raw checks of a store written before it existed
        (a no-op once it holds anything); the number of components filled in."""
        async with self.engine.connect() as connection:
            if await connection.scalar(select(func.count()).select_from(component_states)):
                return 0
            targets = [r[0] for r in await connection.execute(select(checks.c.target).distinct())]
        reader = HistoryReader(self.engine)
        rows: list[Row] = []
        for target in targets:
            latest = await reader.latest(target)
            if latest is None:
                continue
            at = latest.record.at
            rows.append(_state(target, TARGET_COMPONENT, latest.record.status, latest.since, at))
            for sample in latest.record.services:
                since = await reader.service_since(target, sample.service, sample.status)
                rows.append(_state(target, sample.service, sample.status, since, at))
        if rows:
            async with self.engine.begin() as connection:
                await connection.execute(
                    self._insert(component_states).on_conflict_do_nothing(), rows
                )
        return len(rows)

    # -- incidents ---------------------------------------------------------------------------

    async def open_incident(
        self, target: str, service: str, status: Status, at: float, title: str
    ) -> int:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                insert(incidents).values(
                    target=target,
                    service=service,
                    state=IncidentState.OPEN.value,
                    impact=status.value,
                    title=title,
                    opened_at=at,
                    resolved_at=None,
                    updated_at=at,
                )
            )
            incident_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at=at,
                    kind="opened",
                    status=status,
                    public=True,
                    text=f"We are investigating: {title}.",
                ),
            )
        return incident_id

    async def add_event(self, incident_id: int, event: IncidentEvent) -> None:
        async with self.engine.begin() as connection:
            await self._event(connection, incident_id, event)
            changes: dict[str, object] = {"updated_at": event.at}
            if event.status is not None:
                current = await connection.scalar(
                    select(incidents.c.impact).where(incidents.c.id == incident_id)
                )
                if current is None or event.status.severity > Status.parse(current).severity:
                    changes["impact"] = event.status.value
            await connection.execute(
                update(incidents).where(incidents.c.id == incident_id).values(**changes)
            )

    async def resolve_incident(self, incident_id: int, at: float, text: str) -> None:
        async with self.engine.begin() as connection:
            await self._event(
                connection,
                incident_id,
                IncidentEvent(
                    at=at,
                    kind="resolved",
                    status=Status.HEALTHY,
                    public=True,
                    text=text,
                ),
            )
            await connection.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(state=IncidentState.RESOLVED.value, resolved_at=at, updated_at=at)
            )

    async def _event(
        self, connection: AsyncConnection, incident_id: int, event: IncidentEvent
    ) -> None:
        await connection.execute(
            insert(incident_events).values(
                incident_id=incident_id,
                at=event.at,
                kind=event.kind,
                status=event.status.value if event.status is not None else None,
                text=event.text,
                public=event.public,
                actor=event.actor,
            )
        )

    async def record_reset(
        self, target: str, service: str, actor: str, previous_state: str, at: float
    ) -> int | None:
        """Put a breaker reset on the open incident of that service; its id, or None if none."""
        async with self.engine.connect() as connection:
            incident_id = await connection.scalar(
                select(incidents.c.id)
                .where(
                    incidents.c.target == target,
                    incidents.c.service == service,
                    incidents.c.state == IncidentState.OPEN.value,
                )
                .order_by(incidents.c.opened_at.desc())
                .limit(1)
            )
        if incident_id is None:
            return None
        await self.add_event(
            int(incident_id),
            IncidentEvent(
                at=at,
                kind="breaker_reset",
                status=None,
                public=False,
                actor=actor,
                text=f"Circuit breaker reset by {actor} (was {previous_state}).",
            ),
        )
        return int(incident_id)

    async def add_note(
        self, incident_id: int, text: str, *, public: bool, actor: str | None, at: float
    ) -> None:
        await self.add_event(
            incident_id,
            IncidentEvent(
                at=at,
                kind="note",
                status=None,
                text=text,
                public=public,
                actor=actor,
            ),
        )

    # -- alerts ------------------------------------------------------------------------------

    async def fire_alert(
        self, rule: str, target: str, service: str, summary: str, at: float
    ) -> int:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                insert(alerts).values(
                    rule=rule,
                    target=target,
                    service=service,
                    state=AlertState.FIRING.value,
                    summary=summary,
                    started_at=at,
                    resolved_at=None,
                )
            )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def resolve_alert(self, alert_id: int, at: float) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(state=AlertState.RESOLVED.value, resolved_at=at)
            )
            await self._revise(connection, "alerts")

    async def sync_components(self, catalogue: Sequence[Component]) -> None:
        """Replace the catalogue of components (display names, groups, order).

        Upserts and deletes of the rows that differ, not DELETE-all then INSERT: two syncs at
        once (two daemons starting) must not trip over each other's rows."""
        keep = {(c.target, c.service) for c in catalogue}
        async with self.engine.begin() as connection:
            existing = (
                await connection.execute(select(components.c.target, components.c.service))
            ).all()
            for target, service in existing:
                if (target, service) not in keep:
                    await connection.execute(
                        delete(components).where(
                            components.c.target == target, components.c.service == service
                        )
                    )
            await self._upsert_components(connection, catalogue)
            await self._revise(connection, "catalogue")

    async def _upsert_components(
        self, connection: AsyncConnection, catalogue: Sequence[Component]
    ) -> None:
        if not catalogue:
            return
        statement = self._insert(components)
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=["target", "service"],
                set_={
                    "display_name": statement.excluded.display_name,
                    "group_name": statement.excluded.group_name,
                    "position": statement.excluded.position,
                },
            ),
            [
                {
                    "target": c.target,
                    "service": c.service,
                    "display_name": c.display_name,
                    "group_name": c.group,
                    "position": c.position,
                }
                for c in catalogue
            ],
        )

    def _insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has ON CONFLICT."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    async def _revise(self, connection: AsyncConnection, name: str) -> None:
        """Count a write that adds no row with a fresh id, for ``HistoryReader.last_change``."""
        statement = self._insert(revisions).values(name=name, value=1)
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"value": revisions.c.value + 1}
            )
        )

    # -- retention ---------------------------------------------------------------------------

    async def compact_day_strips(self, now: float) -> int:
        """Rebuild every component's :data:`~monitor.store.schema.day_strips` row from the daily
        roll-ups of its settled days, once a day (a no-op when they are current); the number of
        strips written."""
        through = settled_day(now)
        first = through - (STRIP_DAYS - 1) * DAY
        async with self.engine.connect() as connection:
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
        async with self.engine.begin() as connection:
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
        """Delete raw checks, hourly and daily roll-ups older than their windows."""
        removed: dict[str, int] = {}
        async with self.engine.begin() as connection:
            cutoff = now - raw_days * DAY
            await connection.execute(delete(service_checks).where(service_checks.c.at < cutoff))
            result = await connection.execute(delete(checks).where(checks.c.at < cutoff))
            removed["checks"] = result.rowcount
            for period, days in (("hour", hourly_days), ("day", daily_days)):
                result = await connection.execute(
                    delete(rollups).where(
                        rollups.c.period == period, rollups.c.start < now - days * DAY
                    )
                )
                removed[f"{period}_rollups"] = result.rowcount
        return removed


@dataclass(frozen=True, slots=True)
class _Pending:
    record: CheckRecord
    new_components: tuple[Component, ...]
    future: asyncio.Future[CheckRecord]


REFUSED = "answer out of range"
"""The error of a check stored in place of one the database refused."""


def refused_check(record: CheckRecord) -> CheckRecord:
    """A failed check of ``record``'s target at its time, with nothing from the target's answer
    but what the check itself measured (when it fits a column)."""
    latency = record.latency_ms
    code = record.http_status
    return CheckRecord(
        target=record.target,
        at=record.at,
        status=Status.UNREACHABLE,
        latency_ms=latency if latency is not None and 0 <= latency < 1e12 else None,
        http_status=code if code is not None and 100 <= code <= 999 else None,
        error=REFUSED,
    )


def _store_failing(error: Exception) -> bool:
    """Whether ``error`` says the database is failing rather than refusing one check's data: a
    check is stored as refused only when the database (or its driver) said so about its values."""
    return not _refuses_data(error)


def _refuses_data(error: BaseException) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return False
        # IntegrityError, DataError; sqlite3's OverflowError for an int past 64 bits; asyncpg's
        # DataError (a ValueError) for an argument its column type cannot take.
        if isinstance(current, IntegrityError | DataError | OverflowError | ValueError | TypeError):
            return True
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None]
        pending += [current.__cause__, current.__context__]
    return False


def _settle(future: asyncio.Future[CheckRecord], outcome: CheckRecord | BaseException) -> None:
    if future.done():  # its caller was cancelled; the check was written all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _state(target: str, service: str, status: Status, since: float | None, at: float) -> Row:
    return {
        "target": target,
        "service": service,
        "status": status.value,
        "since": at if since is None else since,
        "checked_at": at,
    }
