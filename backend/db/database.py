"""The database as the application sees it: units of work run through the gate, the ``database``
dependency's retry and breaker, and the error translation.

- :meth:`Database.read` and :meth:`Database.write_idempotent` (e.g. a create carrying an
  ``Idempotency-Key``) go through ``retry(breaker(timeout(...)))``.
- :meth:`Database.write` goes through ``breaker(timeout(...))`` only: when a commit's outcome is
  unknown (the connection died after COMMIT was sent), repeating it blindly could apply it twice.

Object storage has the same shape (:class:`backend.storage.ObjectStorage`): made from its adapter,
wired to its dependency by the composition root with :meth:`~Database.attach`, a retried form and
a once-only form; handlers never touch a breaker or a retry policy themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.db.engine import pool_figures
from backend.db.errors import translated
from backend.db.gate import PoolGate
from backend.db.sqlite_threads import WorkerThreads
from backend.resilience import DependencyGateway

P = ParamSpec("P")
T = TypeVar("T")

Work = Callable[Concatenate[AsyncSession, P], Awaitable[T]]


class Database(DependencyGateway):
    def __init__(self, engine: AsyncEngine, gate: PoolGate, probe: AsyncEngine) -> None:
        self.engine = engine
        self.gate = gate
        self._probe = probe
        self._abandoned: set[asyncio.Future[Any]] = set()
        self._threads = WorkerThreads()
        self._threads.watch(engine)
        self._threads.watch(probe)
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def read(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        async with self.gate:
            return await self.guarded.call(self._unit, False, work, *args, **kwargs)

    async def write(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """A write that must not be repeated blindly: breaker and timeout, no retry."""
        async with self.gate:
            return await self.guarded.call_once(self._unit, True, work, *args, **kwargs)

    async def write_idempotent(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """A write that is safe to repeat (it checks an idempotency key in its transaction)."""
        async with self.gate:
            return await self.guarded.call(self._unit, True, work, *args, **kwargs)

    async def _unit(
        self, commit: bool, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        task = asyncio.ensure_future(self._run(commit, work, *args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Cut short (timeout, breaker opened, client gone): returning the connection to a dead
            # server takes SQLAlchemy seconds of graceful close; let that finish on its own
            # rather than hold the caller, and its gate slot, for it.
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._forget)
            raise

    async def _run(self, commit: bool, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        async with translated(), self.sessions() as session:
            result = await work(session, *args, **kwargs)
            if commit:
                await session.commit()
            return result

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # consumed: the caller was already answered

    async def ping(self) -> None:
        """The health check: connect and run one query, outside the request pool."""
        async with translated(), self._probe.connect() as connection:
            await connection.execute(text("SELECT 1"))

    def figures(self) -> dict[str, int]:
        return {
            **pool_figures(self.engine),
            "waiting": self.gate.waiting,
            "exhausted_total": self.gate.exhausted,
        }

    async def close(self) -> None:
        if self._abandoned:
            await asyncio.wait(set(self._abandoned), timeout=5.0)
        await self.engine.dispose()
        await self._probe.dispose()
        # A SQLite connection cut short (a ping cancelled by the app's stop) still has a thread
        # finishing its work; it must not post into this loop once the loop has closed.
        await self._threads.wait_ended(limit=5.0)
