"""What every write shares: the engine, the dialect's upsert, the revision counter, the fence, and
the funnels (:meth:`WriteBase._begin`, :meth:`WriteBase._connect`) through which a write reaches
the database and its errors come back as :mod:`monitor.store.errors` (the adapter's edge)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.failures import DRIVER_ERRORS, translate
from monitor.store.models import Component
from monitor.store.schema import components, revisions
from shared.resilience import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from monitor.store.writing.checks import Pending

DAY = 86400

Fence = Callable[[AsyncConnection], Awaitable[None]]
"""Run first in every write transaction, on its connection: raises
:class:`~monitor.store.errors.LeaseLost` when the monitor no longer leads, so that nothing of the
transaction is stored (:meth:`monitor.store.leases.LeaseStore.fence`). On PostgreSQL it holds the
lease row ``FOR KEY SHARE`` until the transaction ends: a takeover waits for the write in flight,
and once it has committed no write under the old epoch gets through; the leader's renewals do not
wait for it. A write that may touch many rows is cut into short transactions, each fenced
(:meth:`~monitor.store.writing.retention.RetentionWrites.apply_retention`): on SQLite a renewal
waits for the one write lock."""


class WriteBase:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_window: float = 0.0,
        max_batch: int = 500,
        clock: Clock = SYSTEM_CLOCK,
        fence: Fence | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.fence = fence
        self._dialect = engine.dialect.name
        self.batch_window = batch_window
        self.max_batch = max_batch
        # The group commit's queue (:mod:`monitor.store.writing.checks`).
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def _begin(self, *, fenced: bool = True) -> AsyncIterator[AsyncConnection]:
        """A fenced transaction, committed on the way out; the store's errors translated.

        ``fenced=False`` for people's writes (an ack, a silence), which any process may make
        (the CLI, a TUI tab) whether or not it leads: the fence keeps a deposed monitor's
        *engine* from writing, not an engineer."""
        try:
            if fenced:
                async with self._fenced() as connection:
                    yield connection
            else:
                async with self.engine.begin() as connection:
                    yield connection
        except DRIVER_ERRORS as error:
            raise translate(error) from error

    @asynccontextmanager
    async def _fenced(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that starts with the fence (if any), committed on the way out; the
        database's errors as it raised them (for the check writes, which decide on them)."""
        async with self.engine.begin() as connection:
            if self.fence is not None:
                await self.fence(connection)
            yield connection

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads before a write; the store's errors translated."""
        try:
            async with self.engine.connect() as connection:
                yield connection
        except DRIVER_ERRORS as error:
            raise translate(error) from error

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

    async def _upsert_components(
        self,
        connection: AsyncConnection,
        catalogue: Sequence[Component],
        *,
        with_critical: bool,
    ) -> None:
        """Add or update catalogue rows (a sync, and services a check discovered): a row's
        display name, group, place, check kind and publicity are the caller's.

        ``with_critical``: whether ``critical`` is known to the caller (a check's, which reads
        it from the backend's answer) and so updated; a sync from the config does not know it
        and keeps the flag a row has."""
        if not catalogue:
            return
        statement = self._insert(components)
        updated = {
            "display_name": statement.excluded.display_name,
            "group_name": statement.excluded.group_name,
            "position": statement.excluded.position,
            "kind": statement.excluded.kind,
            "public": statement.excluded.public,
        }
        if with_critical:
            updated["critical"] = statement.excluded.critical
        await connection.execute(
            statement.on_conflict_do_update(index_elements=["target", "service"], set_=updated),
            [
                {
                    "target": c.target,
                    "service": c.service,
                    "display_name": c.display_name,
                    "group_name": c.group,
                    "position": c.position,
                    "critical": c.critical,
                    "kind": c.kind,
                    "public": c.public,
                }
                for c in catalogue
            ],
        )


def printable(value: str, size: int) -> str:
    """``value`` as a text column of ``size`` holds it: each character that is not printable
    (a control, a line break, NUL, a lone surrogate) made a space, the ends stripped, cut to
    ``size`` characters. For text that comes from people (names, reasons): a log line or a TUI
    row must not be broken by it, and the database must not refuse it."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value).strip()
    return cleaned[:size].rstrip()
