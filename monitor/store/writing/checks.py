"""Writes of checks, group-committed: each check with its roll-up increments and component
states in one transaction, so a ``kill -9`` at any moment loses only checks whose
``record_check`` had not returned, and never leaves a roll-up counting a check that is not stored
(or the other way round).

The database's errors are decided here before they are translated (a check the database refuses
for its values is stored as a failed check; a failing database fails the whole batch), and
translated as each caller's check is settled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, func, insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.batch import (
    ReplicaBatch,
    Row,
    StateRows,
    check_row,
    replica_rows,
    rollup_rows,
    service_rows,
    state_rows,
)
from monitor.store.failures import DRIVER_ERRORS, translate
from monitor.store.models import CheckRecord, Component, ReplicaCheck, Status
from monitor.store.schema import (
    checks,
    component_states,
    replica_checks,
    replicas,
    rollups,
    service_checks,
)
from monitor.store.writing.base import WriteBase


class CheckWrites(WriteBase):
    """Checks are group-committed: a check that arrives while another transaction is being
    written (or within ``batch_window`` seconds) goes with the others in the next one, one
    statement per table, so a thousand targets cost a few transactions a second rather than a
    thousand. ``record_check`` still returns only once its check is committed."""

    async def record_check(
        self,
        record: CheckRecord,
        *,
        replicas: Sequence[ReplicaCheck] = (),
        new_components: Sequence[Component] = (),
    ) -> CheckRecord:
        """Store ``record`` with its roll-up increments and component states, its ``replicas``'
        own checks (each replica's raw row and latest state), and add ``new_components``
        (services the check found) to the catalogue, all in the same transaction; return once it
        has committed (raise a ``StoreError`` if it could not be; ``LeaseLost`` if the writer's
        fence found that this monitor no longer leads). A caller that gives up does not take its
        check out of the batch.

        Returns the check as stored: ``record``, or, if the database refused a value in it, the
        failed check stored in its place (:func:`refused_check`, without the new components)."""
        future: asyncio.Future[CheckRecord] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(record, tuple(new_components), future, tuple(replicas)))
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

    async def _commit(self, batch: list[Pending]) -> None:
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
        self, batch: list[Pending], *, refused: Pending | None = None
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
                # Its replicas' rows are bounded and cleaned (they cannot be what was refused):
                # they still show which replica answered what.
                await self._write_checks([Pending(stand_in, (), pending.future, pending.replicas)])
            except Exception as again:
                _settle(pending.future, again)
            else:
                _settle(pending.future, stand_in)

    async def _write_checks(self, batch: Sequence[Pending]) -> None:
        """One transaction; raises what the database raised, untranslated (see the module)."""
        records = [pending.record for pending in batch]
        added = [c for pending in batch for c in pending.new_components]
        fleet = [ReplicaBatch(p.record.target, p.replicas) for p in batch if p.replicas]
        async with self._fenced() as connection:
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
            increments = rollup_rows(records)
            if increments:  # (none when the batch is manual checks alone)
                await self._bump_rollups(connection, increments)
            await self._update_states(connection, state_rows(records))
            if fleet:
                rows = replica_rows(fleet)
                await connection.execute(insert(replica_checks), rows.checks)
                await self._update_replicas(connection, rows.states)
            if added:
                await self._upsert_components(connection, added, with_critical=True)
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

    async def _update_replicas(self, connection: AsyncConnection, rows: StateRows) -> None:
        """Each replica's latest state: ``since`` kept while its status holds; seen again, a
        retired replica is not retired any more, and its ``since`` starts again at this sighting
        (a key is an address: a reused pod IP is another process, not the old one's status)."""
        for batch, keep_since in ((rows.continuing, True), (rows.changed, False)):
            if not batch:
                continue
            statement = self._insert(replicas)
            excluded = statement.excluded
            held = and_(replicas.c.status == excluded.status, replicas.c.retired_at.is_(None))
            since = (
                case((held, replicas.c.since), else_=excluded.since)
                if keep_since
                else excluded.since
            )
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["target", "replica"],
                    set_={
                        "instance_id": excluded.instance_id,
                        "instance_started_at": excluded.instance_started_at,
                        "status": excluded.status,
                        "since": since,
                        "checked_at": excluded.checked_at,
                        "latency_ms": excluded.latency_ms,
                        "error": excluded.error,
                        "services": excluded.services,
                        "retired_at": None,
                    },
                    # A check written late (older than the state) does not move it back.
                    where=replicas.c.checked_at <= excluded.checked_at,
                ),
                batch,
            )


@dataclass(frozen=True, slots=True)
class Pending:
    """A check waiting for its transaction, and the future its caller awaits."""

    record: CheckRecord
    new_components: tuple[Component, ...]
    future: asyncio.Future[CheckRecord]
    replicas: tuple[ReplicaCheck, ...] = ()


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
        manual=record.manual,
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
    """Settle a caller's check; a database's error reaches it as a ``StoreError``."""
    if future.done():  # its caller was cancelled; the check was written all the same
        return
    if isinstance(outcome, DRIVER_ERRORS):
        translated = translate(outcome)
        translated.__cause__ = outcome
        future.set_exception(translated)
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
