"""Closing the database waits for SQLite's connection threads: none outlives the event loop.

The app's stop cancels the health check's ping in flight. aiosqlite's worker thread of that
connection still finishes its work and then posts to the loop; when the loop had closed by then, the
thread died with "RuntimeError: Event loop is closed" — reported by pytest at the setup of whichever
test ran next (seen on tests/backend/test_instance.py, health_interval=0.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import aiosqlite.core
import pytest

from backend.db.database import Database
from backend.db.engine import create_engine, create_probe_engine
from backend.db.gate import PoolGate
from backend.settings import Settings


class _SlowSqlite(ModuleType):
    """aiosqlite's view of ``sqlite3``, with a connect as slow as on a loaded machine."""

    def __init__(self) -> None:
        super().__init__("sqlite3")
        self.connecting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        self.connecting.set()
        # The connection's own slow work, in aiosqlite's thread; the test itself waits on events.
        time.sleep(0.5)  # noqa: TID251
        connection: sqlite3.Connection = sqlite3.connect(*args, **kwargs)
        return connection


def _workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


def test_a_ping_cut_short_by_the_stop_leaves_no_thread_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}", keys_dir=tmp_path / "keys"
    )
    slow = _SlowSqlite()
    monkeypatch.setattr(aiosqlite.core, "sqlite3", slow)
    thread_errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    before = _workers()

    async def ping_then_stop() -> set[threading.Thread]:
        gate = PoolGate(1, max_waiting=1, wait_timeout=1.0)
        database = Database(create_engine(settings), gate, create_probe_engine(settings))
        ping = asyncio.create_task(database.ping())
        assert await asyncio.to_thread(slow.connecting.wait, 10.0)
        ping.cancel()  # as HealthChecker.stop() does to the check in flight
        with contextlib.suppress(asyncio.CancelledError):
            await ping
        await database.close()
        return {t for t in _workers() - before if t.is_alive()}

    left_at_close = asyncio.run(ping_then_stop())  # then the loop is closed
    started = _workers() - before
    for thread in started:
        thread.join(10.0)

    assert left_at_close == set(), "close() returned with a connection thread still running"
    assert [str(e.exc_value) for e in thread_errors] == []
