"""Retention in chunks: every table's old rows go a chunk per fenced transaction, with the same
result as one transaction; on SQLite the leader's renewals get the write lock between two chunks
of a long retention (in one transaction they waited past the ttl, and the leader stepped down)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, or_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from monitor.store import LeaseLost, ReplicaCheck, create_schema, open_engine
from monitor.store.leases import LeaseStore
from monitor.store.schema import (
    checks,
    replica_checks,
    replicas,
    rollups,
    service_checks,
    silences,
)
from monitor.store.writer import HistoryWriter
from monitor.store.writing import retention
from tests.monitor.store.support import DAY, DAY0, HOUR, check, empty_store_url, sample, sqlite_url

NOW = DAY0 + 10 * DAY
WINDOWS = {"raw_days": 7.0, "hourly_days": 9.5, "daily_days": 9.5}
TABLES = (service_checks, checks, replica_checks, replicas, rollups, silences)
CHUNK = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(request.param, request, tmp_path)


@pytest.fixture
async def engine(url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncEngine]:
    """A store for the tests of what retention deletes (not of how it makes way on SQLite: no
    pause between its chunks)."""
    monkeypatch.setattr(retention, "SQLITE_PAUSE", 0.0)
    engine = open_engine(url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


async def _fill(writer: HistoryWriter) -> None:
    """30 hours of checks long past the raw window (two services, ten replicas each) and five
    recent ones (three replicas): every table has old rows to delete, several chunks of them,
    and rows to keep."""
    services = (sample("database"), sample("s3"))
    for hour in range(30):
        at = DAY0 + hour * HOUR
        await writer.record_check(
            check(at, services=services),
            replicas=[ReplicaCheck(f"10.0.0.{n}:8000", check(at)) for n in range(10)],
        )
    for minute in range(5):
        at = NOW - HOUR + minute * 60
        await writer.record_check(
            check(at, services=services),
            replicas=[ReplicaCheck(f"10.0.0.{n}:8000", check(at)) for n in range(3)],
        )
    # Silences that ended long ago (history: gone with the raw checks), and ones that end
    # after the cutoff or are still in force (kept).
    for n in range(2 * CHUNK + 1):
        await writer.add_silence("api/s3", DAY0 + n * HOUR, DAY0 + (n + 1) * HOUR, "alice", None)
    await writer.add_silence("api", NOW - 8 * DAY, NOW - 6 * DAY, "bob", "a long one")
    await writer.add_silence("api", NOW - HOUR, NOW + HOUR, "carol", None)


async def _contents(connection: AsyncConnection) -> dict[str, list[str]]:
    return {
        table.name: sorted(repr(tuple(row)) for row in await connection.execute(table.select()))
        for table in TABLES
    }


async def _one_shot(engine: AsyncEngine) -> tuple[dict[str, int], dict[str, list[str]]]:
    """What retention did in one transaction (its statements before chunks), and the rows it
    left; rolled back."""
    cutoff = NOW - WINDOWS["raw_days"] * DAY
    statements = {
        "service_checks": delete(service_checks).where(service_checks.c.at < cutoff),
        "checks": delete(checks).where(checks.c.at < cutoff),
        "replica_checks": delete(replica_checks).where(replica_checks.c.at < cutoff),
        "replicas": delete(replicas).where(
            or_(replicas.c.retired_at < cutoff, replicas.c.checked_at < cutoff)
        ),
        "hour_rollups": delete(rollups).where(
            rollups.c.period == "hour", rollups.c.start < NOW - WINDOWS["hourly_days"] * DAY
        ),
        "day_rollups": delete(rollups).where(
            rollups.c.period == "day", rollups.c.start < NOW - WINDOWS["daily_days"] * DAY
        ),
        "silences": delete(silences).where(silences.c.ends_at < cutoff),
    }
    async with engine.connect() as connection:
        transaction = await connection.begin()
        removed = {name: (await connection.execute(s)).rowcount for name, s in statements.items()}
        left = await _contents(connection)
        await transaction.rollback()
    return removed, left


NO_PUBLIC_ROWS = {"deliveries": 0, "public_messages": 0, "subscribers": 0, "maintenances": 0}
PUBLIC_DELETES = 6
"""The public side's deletes (#15: ``test_public_store`` fills them): deliveries finished, of old
messages and of lapsed subscribers; old messages; lapsed subscribers; windows long over."""


async def test_retention_in_chunks_leaves_what_one_transaction_did(engine: AsyncEngine) -> None:
    transactions = 0

    async def counting(connection: AsyncConnection) -> None:
        nonlocal transactions
        transactions += 1

    writer = HistoryWriter(engine, fence=counting)
    await _fill(writer)
    expected, left = await _one_shot(engine)
    assert all(
        expected[name] > 2 * CHUNK
        for name in ("checks", "replica_checks", "hour_rollups", "silences")
    )
    assert expected["replicas"] == 7 and expected["day_rollups"] > 0
    transactions = 0
    writer.retention_chunk = CHUNK

    removed = await writer.apply_retention(NOW, **WINDOWS)

    assert removed == {
        **{name: n for name, n in expected.items() if name != "service_checks"},
        **NO_PUBLIC_ROWS,
    }
    async with engine.connect() as connection:
        assert await _contents(connection) == left
    # Each table's rows a chunk per transaction, each transaction fenced: a chunk that comes
    # back full is followed by one more (and one each for the public side's empty tables).
    assert transactions == sum(n // CHUNK + 1 for n in expected.values()) + PUBLIC_DELETES
    # Nothing left to delete: one transaction a table, to find so.
    transactions = 0
    assert set((await writer.apply_retention(NOW, **WINDOWS)).values()) == {0}
    assert transactions == len(expected) + PUBLIC_DELETES


async def test_a_retention_cut_short_by_a_takeover_keeps_its_chunks_and_the_next_ends_it(
    engine: AsyncEngine,
) -> None:
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=3.0, now=DAY0, expected=None)
    assert lease is not None
    fence = store.fence(lease)
    chunks = 0

    async def taken_over_after_three_chunks(connection: AsyncConnection) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == 3:
            await store.acquire("m2", ttl=3.0, now=DAY0 + 9, expected=lease)
        await fence(connection)

    await _fill(HistoryWriter(engine))
    expected, left = await _one_shot(engine)
    old = HistoryWriter(engine, fence=taken_over_after_three_chunks)
    old.retention_chunk = CHUNK

    with pytest.raises(LeaseLost):
        await old.apply_retention(NOW, **WINDOWS)

    async with engine.connect() as connection:
        kept = await _contents(connection)
    assert (
        len(kept["service_checks"])
        == len(left["service_checks"]) + expected["service_checks"] - 2 * CHUNK
    )  # the two chunks before the takeover stay deleted
    new = HistoryWriter(engine)
    new.retention_chunk = CHUNK
    await new.apply_retention(NOW, **WINDOWS)
    async with engine.connect() as connection:
        assert await _contents(connection) == left


# -- SQLite: the leader renews while retention runs -------------------------------------------

ROWS = 12_000
ROW_COST = 0.00015
"""Seconds each deleted replica check costs (a temporary trigger sleeps): 12,000 rows cost
about as long as the millions of a large fleet's week (13 s in the review), scaled to a 1 s
ttl, without a test writing millions of rows."""


def _slow_deletes(engine: AsyncEngine) -> None:
    """Every connection of ``engine`` spends :data:`ROW_COST` on each replica check it deletes."""

    def slow_row() -> None:
        # Work of the database's own thread, not a test waiting for a timer: it stands for the
        # cost of deleting a row of a large store (and lets other threads run, as SQLite does).
        time.sleep(ROW_COST)  # noqa: TID251

    @event.listens_for(engine.sync_engine, "connect")
    def _install(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.create_function("slow_row", 0, slow_row)
        cursor = dbapi_connection.cursor()
        cursor.execute(
            "CREATE TEMP TRIGGER slow_delete AFTER DELETE ON replica_checks"
            " BEGIN SELECT slow_row(); END"
        )
        cursor.close()


async def test_on_sqlite_the_leader_renews_while_a_long_retention_runs(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "monitor.db")
    setup = open_engine(url)
    await create_schema(setup)
    async with setup.begin() as connection:
        await connection.execute(
            insert(replica_checks),
            [
                {
                    "target": "api",
                    "replica": "10.0.0.5:8000",
                    "at": DAY0 + n,
                    "status": "healthy",
                    "services": "[]",
                }
                for n in range(ROWS)
            ],
        )
    await setup.dispose()
    leases = LeaseStore(open_engine(url))  # (the role loop's engine; the daemon has its own)
    daemon = open_engine(url)
    _slow_deletes(daemon)
    try:
        lease = await leases.acquire("m1", ttl=1.0, now=DAY0, expected=None)
        assert lease is not None
        writer = HistoryWriter(daemon, fence=leases.fence(lease))
        writer.retention_chunk = 1000  # (a chunk of 10,000 rows as slow as these: 1.5 s)
        assert writer.retention_chunk * ROW_COST < lease.ttl / 4
        run = asyncio.ensure_future(writer.apply_retention(NOW, **WINDOWS))
        renewals: list[float] = []
        while not run.done():
            sent = time.monotonic()
            renewed = await asyncio.wait_for(leases.renew(lease, now=DAY0), timeout=lease.ttl / 2)
            renewals.append(time.monotonic() - sent)
            assert renewed is not None
            lease = renewed
            await asyncio.sleep(lease.ttl / 10)
        removed = await run
    finally:
        await leases.engine.dispose()
        await daemon.dispose()

    assert removed["replica_checks"] == ROWS
    assert len(renewals) >= 10, renewals  # (it ran for seconds, renewed every tenth of one)
    assert max(renewals) < lease.ttl / 2


def test_the_pause_between_chunks_outlasts_sqlites_busy_handler_sleeps() -> None:
    assert retention.SQLITE_PAUSE > 0.1
