"""What every read shares: one funnel (:meth:`ReadBase._read`) that runs a read on a connection,
in a worker thread on a plain SQLite engine or through the async driver, and translates what the
database raises into :mod:`monitor.store.errors` (the adapter's edge)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Engine, Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.failures import DRIVER_ERRORS, translate
from monitor.store.models import BarSeries

T = TypeVar("T")
Columns = tuple[Any, ...]

HOUR = 3600
DAY = 86400
PERIODS = {"hour": HOUR, "day": DAY}


class ReadBase:
    """The engines a reader reads through, and the one way a read reaches them.

    ``threaded``: a plain (synchronous) engine on the same SQLite file
    (:func:`monitor.store.engine.thread_engine`). With it each read runs whole in a worker
    thread: one hand-off between threads per read. Without it a read runs through the async
    driver, and aiosqlite hands every call over to its connection's thread and back (cursor,
    execute, fetch, close, rollback: five hand-offs for one query). A cold status page makes ~10
    queries; the hand-offs were most of its time.
    """

    def __init__(self, engine: AsyncEngine, *, threaded: Engine | None = None) -> None:
        self.engine = engine
        self.threaded = threaded
        # Each component's strip as read last, and decoded: a strip's text changes once a day
        # (the daemon's rebuild) and a status page reads them every few seconds.
        self._strips: dict[tuple[str, str], tuple[str, BarSeries]] = {}

    async def _read(self, read: Callable[[Connection], T]) -> T:
        try:
            if self.threaded is not None:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(_executor(), _read_with, self.threaded, read)
            async with self.engine.connect() as connection:
                return await connection.run_sync(read)
        except DRIVER_ERRORS as error:
            raise translate(error) from error

    async def _rows(self, query: Select[*Columns]) -> Sequence[Row[*Columns]]:
        return await self._read(lambda connection: connection.execute(query).all())

    async def _mappings(self, query: Select[*Columns]) -> Sequence[RowMapping]:
        return await self._read(lambda connection: connection.execute(query).mappings().all())


_READ_THREADS = 4
"""Worker threads for threaded reads, their own: a read stuck on a locked store (up to its busy
timeout) must not hold up what else runs in asyncio's default pool (DNS lookups, for one)."""
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_READ_THREADS, thread_name_prefix="store-read")
    return _pool


def _read_with(engine: Engine, read: Callable[[Connection], T]) -> T:
    """``read`` on a connection of a synchronous engine (in a worker thread)."""
    with engine.connect() as connection:
        return read(connection)
