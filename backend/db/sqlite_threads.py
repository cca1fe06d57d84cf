"""The worker threads behind SQLite connections, so that closing the database can wait for them.

aiosqlite runs each connection in a thread of its own that hands every result back to the event
loop. A connection cut short by a cancellation (the health check's ping when the app stops, a
request abandoned at its deadline) is stopped without anyone awaiting it: its thread still
finishes the work in hand and then posts to the loop. If the loop has closed by then, the thread
dies with "Event loop is closed". :class:`WorkerThreads` notes every connection's thread as it is
made (SQLAlchemy's ``do_connect`` event, the dialect's ``async_creator_fn``), and
:meth:`WorkerThreads.wait_ended` lets ``Database.close`` wait, bounded, until they have ended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)


class WorkerThreads:
    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # connects come from SQLAlchemy's greenlets on the loop

    def watch(self, engine: AsyncEngine) -> None:
        """Note the worker thread of every connection ``engine`` makes (SQLite engines only)."""
        if engine.dialect.driver != "aiosqlite":
            return
        event.listen(engine.sync_engine, "do_connect", self._use_our_connect)

    def _use_our_connect(
        self, dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        cparams["async_creator_fn"] = self._connect

    def _connect(self, *args: Any, **kwargs: Any) -> aiosqlite.Connection:
        connection = aiosqlite.connect(*args, **kwargs)
        thread: threading.Thread = connection._thread
        thread.daemon = True  # as SQLAlchemy's own connect does: never hold up the interpreter
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive() or not t.ident]
            self._threads.append(thread)
        return connection

    @property
    def alive(self) -> list[threading.Thread]:
        with self._lock:
            return [t for t in self._threads if t.is_alive()]

    async def wait_ended(self, limit: float) -> None:
        """Return once every noted thread has ended, or after ``limit`` seconds (logged)."""
        alive = self.alive
        if not alive:
            return
        deadline = asyncio.get_running_loop().time() + limit
        for thread in alive:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            # join in a helper thread: the worker's last act is to post to this loop
            await asyncio.to_thread(thread.join, left)
        if still := self.alive:
            logger.warning(
                "%d SQLite connection thread(s) still running at close",
                len(still),
                extra={"event": "sqlite_threads_left"},
            )
