"""The store's errors at its edge: whatever the database says reaches callers as a
:mod:`monitor.store.errors` type, decided by the driver's error type and code (SQLSTATE), on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from monitor.store import (
    HistoryReader,
    LeaderLease,
    Status,
    StoreError,
    StoreNotInitialised,
    StoreSchemaMismatch,
    StoreUnavailable,
    open_engine,
    open_reader,
)
from monitor.store.failures import translate
from monitor.store.leases import LeaseStore
from monitor.store.writer import HistoryWriter
from statuspage.app import create_app
from tests.monitor.store.support import DAY0, check, sqlite_url

SECRET = "s3cret-pass"


@asynccontextmanager
async def reader_on(url: str, backend: str) -> AsyncIterator[HistoryReader]:
    """The reader as each kind of caller opens it (the threaded one as the status page does)."""
    if backend == "sqlite-threaded":
        async with open_reader(url) as reader:
            yield reader
        return
    engine = open_engine(url, read_only=True)
    try:
        yield HistoryReader(engine)
    finally:
        await engine.dispose()


# -- a store the monitor never ran on -----------------------------------------------------------


async def test_a_store_without_tables_reads_as_not_initialised(
    store_url: str, backend: str
) -> None:
    async with reader_on(store_url, backend) as reader:
        reads = {
            "states": reader.states(),
            "last_change": reader.last_change(),
            "components": reader.components(),
            "latest": reader.latest("api"),
            "series_many": reader.series_many([("api", "")], now=DAY0),
            "incidents": reader.incidents(with_events=True),
            "alerts": reader.alerts(),
            "replicas": reader.replicas(),
            "leader": reader.leader(),
        }
        for name, read in reads.items():
            with pytest.raises(StoreNotInitialised) as raised:
                await read
            assert "questcity monitor" in str(raised.value), name
            assert raised.value.__cause__ is not None, name  # the driver's error, for a traceback


async def test_writing_to_a_store_without_tables_is_not_initialised(store_url: str) -> None:
    engine = open_engine(store_url)
    writer = HistoryWriter(engine)
    try:
        with pytest.raises(StoreNotInitialised):
            await writer.record_check(check(DAY0))
        with pytest.raises(StoreNotInitialised):
            await writer.open_incident("api", "", Status.UNHEALTHY, DAY0, "API down")
        with pytest.raises(StoreNotInitialised):
            await writer.fire_alert("breaker_open", "api", "database", "open", DAY0)
        with pytest.raises(StoreNotInitialised):
            await writer.apply_retention(DAY0, raw_days=1, hourly_days=1, daily_days=1)
        with pytest.raises(StoreNotInitialised):
            await writer.retire_replicas("api", ["10.0.0.5:8000"], DAY0)
        with pytest.raises(StoreNotInitialised):
            await LeaseStore(engine).acquire("m1", ttl=3.0, now=DAY0, expected=None)
    finally:
        await engine.dispose()


async def test_the_status_page_shows_the_empty_board_on_a_store_without_tables(
    store_url: str,
) -> None:
    app = create_app(store_url, clock=lambda: DAY0, revalidate_after=0.0)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://page") as client,
    ):
        page = await client.get("/")
        summary = await client.get("/api/v2/summary.json")
        incident = await client.get("/incidents/1")

    assert (page.status_code, summary.status_code, incident.status_code) == (200, 200, 404)
    assert summary.json()["components"] == [] and summary.json()["incidents"] == []


# -- a store that cannot be reached -------------------------------------------------------------


def _closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unreachable(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        return f"postgresql://monitor:{SECRET}@127.0.0.1:{_closed_port()}/monitor"
    folder = tmp_path / "not-a-file.db"  # a directory where the database file should be
    folder.mkdir()
    return sqlite_url(folder)


async def _driver_threads_finished() -> None:
    """Wait for aiosqlite's connection threads to end: one whose connection failed still hands
    its last result to the loop, which must then be running (not closed by the test's end)."""
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 10)


@pytest.mark.parametrize("backend", ["sqlite", "sqlite-threaded", "postgresql"])
async def test_an_unreachable_store_is_unavailable(backend: str, tmp_path: Path) -> None:
    url = _unreachable(backend, tmp_path)
    async with reader_on(url, backend) as reader:
        with pytest.raises(StoreUnavailable) as read:
            await asyncio.wait_for(reader.states(), 30)
    engine = open_engine(url)
    try:
        with pytest.raises(StoreUnavailable) as written:
            await asyncio.wait_for(HistoryWriter(engine).record_check(check(DAY0)), 30)
        # A leader that cannot reach the store has not lost its lease (a fenced write, a
        # renewal): it cannot tell yet.
        leases = LeaseStore(engine)
        lease = LeaderLease("m1", 1, 0, DAY0, DAY0, 3.0)
        fenced = HistoryWriter(engine, fence=leases.fence(lease))
        with pytest.raises(StoreUnavailable) as fence:
            await asyncio.wait_for(fenced.record_check(check(DAY0)), 30)
        with pytest.raises(StoreUnavailable) as renewal:
            await asyncio.wait_for(leases.renew(lease, now=DAY0), 30)
    finally:
        await engine.dispose()
        await _driver_threads_finished()

    for raised in (read.value, written.value, fence.value, renewal.value):
        message = str(raised)
        assert SECRET not in message and "127.0.0.1" not in message and "monitor:" not in message
        if backend == "postgresql":
            assert message == "cannot reach the store: connection refused"
        else:
            assert message == "cannot use the store: unable to open database file"


# -- the translation, by type and code ----------------------------------------------------------


class _PgError(Exception):
    """What asyncpg's errors carry: the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"from host db.internal as user admin ({sqlstate})")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "kind", "words"),
    [
        ("42P01", StoreNotInitialised, "no tables yet"),
        ("42703", StoreSchemaMismatch, "questcity store upgrade"),
        ("08006", StoreUnavailable, "cannot connect to PostgreSQL"),
        ("28P01", StoreUnavailable, "refused the login"),
        ("3D000", StoreUnavailable, "does not exist"),
        ("53300", StoreUnavailable, "out of resources"),
        ("57P01", StoreUnavailable, "shutting down"),
        ("55P03", StoreUnavailable, "waiting for a lock"),
        ("23505", StoreError, "refused the operation (SQLSTATE 23505)"),
    ],
)
def test_postgresql_errors_are_told_by_their_sqlstate(
    sqlstate: str, kind: type[StoreError], words: str
) -> None:
    error = DBAPIError("SELECT 1", {}, _PgError(sqlstate))

    translated = translate(error)

    assert type(translated) is kind
    assert words in str(translated)
    assert "db.internal" not in str(translated) and "admin" not in str(translated)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (sqlite3.OperationalError("no such table: checks"), StoreNotInitialised),
        (sqlite3.OperationalError("no such column: checks.region"), StoreSchemaMismatch),
        (sqlite3.OperationalError("database is locked"), StoreUnavailable),
        (sqlite3.OperationalError("disk I/O error"), StoreUnavailable),
        (sqlite3.IntegrityError("NOT NULL constraint failed: checks.target"), StoreError),
    ],
)
def test_sqlite_errors_are_told_by_their_type_and_a_missing_table_by_its_message(
    error: sqlite3.Error, kind: type[StoreError]
) -> None:
    wrapper = (IntegrityError if isinstance(error, sqlite3.IntegrityError) else OperationalError)(
        "SELECT 1", {}, error
    )

    assert type(translate(wrapper)) is kind


def test_a_refused_connection_names_no_address() -> None:
    error = ConnectionRefusedError(111, "Connect call failed ('10.1.2.3', 5432)")

    translated = translate(error)

    assert type(translated) is StoreUnavailable
    assert str(translated) == "cannot reach the store: connection refused"


def test_a_store_error_passes_as_it_is() -> None:
    error = StoreNotInitialised()

    assert translate(error) is error
