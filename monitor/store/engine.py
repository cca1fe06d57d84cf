"""Opening the store: SQLite in WAL mode by default, PostgreSQL for several readers at scale.

``monitor.toml`` names plain URLs (``sqlite:///./var/monitor.db``, ``postgresql://…``); the async
drivers are chosen here.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from monitor.store.errors import StoreUnavailable, StoreURLError

__all__ = [
    "StoreURLError",
    "async_url",
    "create_schema",
    "open_engine",
    "sqlite_file",
    "thread_engine",
]

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise StoreURLError(
            f"storage url {parsed.render_as_string(hide_password=True)!r}: use sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST/DB"
        )
    return parsed.set(drivername=_DRIVERS[backend])


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names; None for PostgreSQL or an in-memory database (for callers
    outside the store, which import nothing of SQLAlchemy). Raises :class:`StoreURLError` as
    :func:`async_url` does."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def open_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    """An engine on the store. ``read_only`` readers (the TUI, the status page) never write."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_size=5, max_overflow=5, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        _make_folder(parsed.database)
    engine = create_async_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        if not read_only:
            _wal(cursor)
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a committed transaction survives a crash of the process (kill -9);
        # only a power loss may take the last ones back, and never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


WAL_TRIES = 50


def _wal(cursor: Any) -> None:
    """Switch the file to WAL. Two writers opening a new file at once (two monitors starting)
    may both switch it: SQLite answers one of them "database is locked" at once, with no busy
    wait (waiting could deadlock), ~1 start in 25 in ``test_two_writers_starting_at_once``. The
    other's switch takes milliseconds: try again shortly. (A connect hook of the driver's: it
    cannot await; this wait happens only in that race.)"""
    for attempt in range(WAL_TRIES):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_TRIES - 1:
                raise
            time.sleep(0.02)  # noqa: TID251


def thread_engine(url: str) -> Engine | None:
    """For a SQLite file, a synchronous engine on the same file, for readers to run each read
    whole in a worker thread (``HistoryReader(engine, threaded=...)``); None for PostgreSQL, whose
    driver needs no threads. Only for reading; dispose of it with the async engine."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None  # (an in-memory database is private to its connection)
    _make_folder(parsed.database)
    # Connections move between the reader's worker threads, one thread at a time.
    engine = create_engine(
        parsed.set(drivername="sqlite+pysqlite"), connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=10000")  # as the async engine's readers

    return engine


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the store's schema to this program's revision: every migration on a new store, the
    missing ones on an older store (:func:`monitor.store.migrate.upgrade_store`).

    A store already there (every start but the first after an upgrade) is recognised by one
    query, without Alembic: importing it costs ~0.35 s of CPU, paid by every daemon start and
    every browser tab of ``tui --serve`` (a TUI process each)."""
    if await _at_head(engine):
        return
    from monitor.store.migrate import upgrade_store  # (Alembic only when there is work)

    await upgrade_store(engine)


async def _at_head(engine: AsyncEngine) -> bool:
    from monitor.store.migrations import HEAD_REVISION, VERSION_TABLE  # (writers only)

    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    except (SQLAlchemyError, sqlite3.Error, OSError):
        return False  # no version table, or no store: the full path says which, in its words
    return bool(found == HEAD_REVISION)


def _make_folder(database: str) -> None:
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreUnavailable(
            f"the folder of the SQLite store cannot be made: {folder}: "
            f"{error.strerror or type(error).__name__}; check [storage] url"
        ) from None
