"""The leadership lease: compare-and-swap, renewal, release, and the fence on every write; on
SQLite and PostgreSQL alike, and what only PostgreSQL can show (monitors racing on one row, a
takeover waiting for a write in flight) on a real server."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store import (
    AlertState,
    Component,
    DeliveryState,
    HistoryReader,
    IncidentComponent,
    IncidentEvent,
    LeaderLease,
    LeaseLost,
    MaintenanceEvent,
    ReplicaCheck,
    Status,
    StoreError,
    StoreUnavailable,
    create_schema,
    open_engine,
)
from monitor.store import leases as lease_module
from monitor.store.leases import LeaseStore
from monitor.store.ports import HistoryWrite
from monitor.store.schema import checks, incidents, metadata, replica_checks, subscribers
from monitor.store.writer import HistoryWriter
from tests.monitor.store.support import DAY, DAY0, check, migrated_store_url, sample
from tests.support.polling import eventually

TTL = 3.0


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # A copy of the session's migrated store (_engine's create_schema finds it at head).
    yield from migrated_store_url(request.param, request, tmp_path)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_store_url("postgresql", request, tmp_path)


async def _engine(url: str) -> AsyncEngine:
    engine = open_engine(url)
    await create_schema(engine)
    return engine


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def other(engine: AsyncEngine, url: str) -> AsyncIterator[AsyncEngine]:
    """A second monitor's engine on the same store (its own connections)."""
    second = open_engine(url)
    yield second
    await second.dispose()


async def _count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int(await connection.scalar(query) or 0)


# -- acquire, renew, release ---------------------------------------------------------------------


async def test_the_first_monitor_takes_an_empty_lease(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    assert await store.read() is None
    assert await HistoryReader(engine).leader() is None

    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)

    assert lease == LeaderLease("m1", 1, 0, DAY0, DAY0, TTL)
    assert await store.read() == lease
    assert await HistoryReader(engine).leader() == lease
    # A second monitor that also saw no lease loses: the row is there now.
    assert await store.acquire("m2", ttl=TTL, now=DAY0 + 1, expected=None) is None
    assert await store.read() == lease


async def test_renewing_counts_beats_while_the_lease_is_ours(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None

    once = await store.renew(lease, now=DAY0 + 1)
    twice = await store.renew(lease, now=DAY0 + 2)

    assert once == LeaderLease("m1", 1, 1, DAY0, DAY0 + 1, TTL)
    assert twice == LeaderLease("m1", 1, 2, DAY0, DAY0 + 2, TTL)
    assert await HistoryReader(engine).leader() == twice


async def test_a_takeover_needs_the_lease_as_it_was_seen(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    seen = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert seen is not None
    renewed = await store.renew(seen, now=DAY0 + 1)  # the leader is alive: the beat moved

    assert await store.acquire("m2", ttl=TTL, now=DAY0 + 2, expected=seen) is None

    taken = await store.acquire("m2", ttl=TTL * 2, now=DAY0 + 5, expected=renewed)
    assert taken == LeaderLease("m2", 2, 0, DAY0 + 5, DAY0 + 5, TTL * 2)
    # The deposed leader finds out when it renews.
    assert await store.renew(seen, now=DAY0 + 6) is None
    assert await store.read() == taken


async def test_a_released_lease_is_taken_under_the_next_epoch(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    before = await HistoryReader(engine).last_change()

    await store.release(lease, now=DAY0 + 1)

    released = await store.read()
    assert released == LeaderLease("", 1, 0, DAY0, DAY0 + 1, TTL)
    assert await HistoryReader(engine).last_change() > before  # the TUI sees it at once
    assert await store.renew(lease, now=DAY0 + 2) is None
    taken = await store.acquire("m1", ttl=TTL, now=DAY0 + 3, expected=released)
    assert taken == LeaderLease("m1", 2, 0, DAY0 + 3, DAY0 + 3, TTL)


async def test_releasing_a_lease_lost_already_changes_nothing(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    old = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert old is not None
    new = await store.acquire("m2", ttl=TTL, now=DAY0 + 5, expected=old)

    await store.release(old, now=DAY0 + 6)

    assert await store.read() == new


async def test_a_long_monitor_id_is_cut_to_its_column(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)

    lease = await store.acquire("m" * 1000, ttl=TTL, now=DAY0, expected=None)

    assert lease is not None and lease.holder == "m" * 200
    assert await store.read() == lease
    assert await store.renew(lease, now=DAY0 + 1) is not None


def test_lease_lost_is_a_store_error_in_plain_words() -> None:
    assert isinstance(LeaseLost(), StoreError)
    assert str(LeaseLost()) == "this monitor no longer leads"


# -- the fence -------------------------------------------------------------------------------------


async def test_a_deposed_leaders_writes_are_refused(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    writer = HistoryWriter(engine, fence=store.fence(lease))
    await writer.record_check(check(DAY0))
    await writer.open_incident("api", "", Status.UNHEALTHY, DAY0, "API down")
    await store.renew(lease, now=DAY0 + 1)  # (a renewal does not lose it)
    await writer.record_check(check(DAY0 + 1))

    renewed = await store.read()
    assert await store.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=renewed) is not None

    with pytest.raises(LeaseLost):
        await writer.record_check(check(DAY0 + 10))
    with pytest.raises(LeaseLost):
        await writer.open_incident("web", "", Status.UNHEALTHY, DAY0 + 10, "Web down")
    with pytest.raises(LeaseLost):
        await writer.retire_replicas("api", ["10.0.0.5:8000"], DAY0 + 10)
    assert await _count(engine, checks) == 2
    assert await _count(engine, incidents) == 1


async def test_a_released_lease_fences_its_old_holder(engine: AsyncEngine) -> None:
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    writer = HistoryWriter(engine, fence=store.fence(lease))

    await store.release(lease, now=DAY0 + 1)

    with pytest.raises(LeaseLost):
        await writer.record_check(check(DAY0 + 2))


async def test_a_fenced_group_commit_is_refused_as_a_whole(engine: AsyncEngine) -> None:
    """Checks of many targets queued for one transaction, with their replicas: after a
    takeover not one of them is stored, and each caller is told ``LeaseLost``."""
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    writer = HistoryWriter(engine, fence=store.fence(lease))
    await store.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=lease)
    records = [check(DAY0 + n, target=f"t{n}") for n in range(30)]

    results = await asyncio.gather(
        *(writer.record_check(r, replicas=[ReplicaCheck("10.0.0.5:8000", r)]) for r in records),
        return_exceptions=True,
    )

    assert all(isinstance(r, LeaseLost) for r in results), results
    assert await _count(engine, checks) == 0
    assert await _count(engine, replica_checks) == 0


async def test_the_new_leaders_writes_go_through(engine: AsyncEngine, other: AsyncEngine) -> None:
    first = await LeaseStore(engine).acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert first is not None
    second_store = LeaseStore(other)
    second = await second_store.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=first)
    assert second is not None

    writer = HistoryWriter(other, fence=second_store.fence(second))
    await writer.record_check(check(DAY0 + 10))

    assert await _count(engine, checks) == 1


# -- the fence on every write of the port ------------------------------------------------------

Write = Callable[[HistoryWriter], Awaitable[object]]


async def _record_and_flush(writer: HistoryWriter) -> None:
    """``flush`` settles the checks queued: they are refused (flush itself only waits)."""
    queued = asyncio.ensure_future(writer.record_check(check(DAY0 + 10)))
    await asyncio.sleep(0)  # (queued now)
    await writer.flush()
    await queued


LATE = DAY0 + 10
FENCED_WRITES: dict[str, Write] = {
    "record_check": lambda w: w.record_check(
        check(LATE, services=(sample("database"),)),
        replicas=[ReplicaCheck("10.0.0.5:8000", check(LATE))],
    ),
    "flush": _record_and_flush,
    "retire_replicas": lambda w: w.retire_replicas("api", ["10.0.0.5:8000"], LATE),
    "open_incident": lambda w: w.open_incident("web", "", Status.UNHEALTHY, LATE, "Web down"),
    "add_event": lambda w: w.add_event(
        1, IncidentEvent(LATE, "state_change", Status.UNHEALTHY, "worse", True)
    ),
    "set_incident_components": lambda w: w.set_incident_components(
        1, [IncidentComponent("api", "", Status.DEGRADED)], LATE
    ),
    "retitle_incident": lambda w: w.retitle_incident(1, "Outage", Status.UNREACHABLE),
    "resolve_incident": lambda w: w.resolve_incident(1, LATE, "fixed"),
    "record_reset": lambda w: w.record_reset("api", "database", "alice", "open", LATE),
    "add_note": lambda w: w.add_note(1, "looking", public=False, actor="alice", at=LATE),
    "fire_alert": lambda w: w.fire_alert("breaker_open", "web", "s3", "open", LATE),
    "resolve_alert": lambda w: w.resolve_alert(1, LATE),
    "update_alert": lambda w: w.update_alert(1, "still open", LATE),
    "mark_notified": lambda w: w.mark_notified(1, AlertState.FIRING),
    # #15: the daemon's side of windows and the sender's of subscriptions
    # (before the retention, which deletes window 1).
    "mark_maintenance": lambda w: w.mark_maintenance(1, "started", LATE),
    "add_maintenance_event": lambda w: w.add_maintenance_event(
        1, MaintenanceEvent(LATE, "held_alert", "breaker_open on api/database")
    ),
    "fan_out": lambda w: w.fan_out(LATE),
    "finish_delivery": lambda w: w.finish_delivery(1, DeliveryState.SENT, LATE),
    "sync_components": lambda w: w.sync_components(
        [Component("api", "cache", "Cache", "Production", 9)]
    ),
    "compact_day_strips": lambda w: w.compact_day_strips(DAY0 + 5 * DAY),
    "apply_retention": lambda w: w.apply_retention(
        DAY0 + 30 * DAY, raw_days=7, hourly_days=7, daily_days=7
    ),
}
"""A write of each method of the writer's port, each one that would change the store (the
rows it names exist: see :func:`_before_the_takeover`)."""
UNFENCED_WRITES: dict[str, Write] = {
    "ack_alert": lambda w: w.ack_alert(1, "alice", LATE),
    "add_silence": lambda w: w.add_silence("api/database", LATE, LATE + 3600, "alice", None),
    # #15: ``questcity incident …`` and ``questcity maintenance …``.
    "open_written_incident": lambda w: w.open_written_incident(
        "Slow logins", [IncidentComponent("api", "", Status.DEGRADED)], "Looking", "alice", LATE
    ),
    "update_incident": lambda w: w.update_incident(1, "identified", "Found it", "alice", LATE),
    "write_postmortem": lambda w: w.write_postmortem(1, "What happened", "alice", LATE),
    "schedule_maintenance": lambda w: w.schedule_maintenance(
        "Upgrade", ["api"], LATE + 3600, LATE + 7200, None, "alice", LATE
    ),
    "cancel_maintenance": lambda w: w.cancel_maintenance(1, "alice", LATE),
}
"""People's writes (#14: ``questcity alert ack|silence``, a TUI tab; #15: written incidents and
windows): any process makes them, leading or not, so a writer's fence does not refuse them."""


def _port_writes() -> list[str]:
    """Every public method of :class:`HistoryWrite`: a method added to the port without a case
    above fails the test below."""
    return sorted(
        name
        for name, member in vars(HistoryWrite).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    )


async def _before_the_takeover(writer: HistoryWriter) -> None:
    """What the leader wrote while it led: rows for every write of :data:`FENCED_WRITES` to
    change (incident 1 open on api/database, alert 1 firing, a replica, settled roll-ups;
    subscriber 1 with delivery 1, window 1 ahead, a message queued)."""
    await writer.record_check(
        check(DAY0, services=(sample("database"),)),
        replicas=[ReplicaCheck("10.0.0.5:8000", check(DAY0))],
    )
    await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "DB down")
    await writer.fire_alert("breaker_open", "api", "database", "open", DAY0)
    async with writer.engine.begin() as connection:
        if not await connection.scalar(select(func.count()).select_from(subscribers)):
            await connection.execute(
                subscribers.insert().values(
                    kind="email",
                    address="a@example.org",
                    components="",
                    language="en",
                    created_at=DAY0,
                    confirmed_at=DAY0,
                )
            )
    await writer.fan_out(DAY0)  # (delivery 1: the incident's opening)
    await writer.schedule_maintenance("Upgrade", ["api"], LATE, LATE + 3600, None, "bob", DAY0)


async def _deposed_writer(engine: AsyncEngine) -> HistoryWriter:
    """The writer of a leader (m1) that wrote :func:`_before_the_takeover`, then lost its lease
    to m2."""
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    writer = HistoryWriter(engine, fence=store.fence(lease))
    await _before_the_takeover(writer)
    assert await store.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=lease) is not None
    return writer


async def _everything(engine: AsyncEngine) -> dict[str, list[str]]:
    async with engine.connect() as connection:
        return {
            table.name: sorted(repr(tuple(row)) for row in await connection.execute(table.select()))
            for table in metadata.sorted_tables
        }


def test_every_write_of_the_port_has_a_fence_case() -> None:
    assert set(_port_writes()) >= {"record_check", "apply_retention", "mark_notified"}
    assert set(FENCED_WRITES) | set(UNFENCED_WRITES) == set(_port_writes())
    assert not set(FENCED_WRITES) & set(UNFENCED_WRITES)


@pytest.mark.parametrize("method", [m for m in _port_writes() if m not in UNFENCED_WRITES])
async def test_after_a_takeover_every_write_is_refused_and_writes_nothing(
    engine: AsyncEngine, method: str
) -> None:
    write = FENCED_WRITES.get(method)
    assert write is not None, f"HistoryWrite.{method} has no case in FENCED_WRITES"
    writer = await _deposed_writer(engine)
    before = await _everything(engine)

    with pytest.raises(LeaseLost):
        await write(writer)

    assert await _everything(engine) == before


async def test_the_fence_cases_write_under_the_lease(engine: AsyncEngine) -> None:
    """The cases above are writes that change the store (a case that wrote nothing anyway
    would pass them with no fence at all)."""
    store = LeaseStore(engine)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    for method, write in FENCED_WRITES.items():
        if method in ("resolve_incident", "resolve_alert"):
            continue  # (they would close what the next cases write to)
        writer = HistoryWriter(engine, fence=store.fence(lease))
        await _before_the_takeover(writer)
        before = await _everything(engine)
        await write(writer)
        assert await _everything(engine) != before, method
    for method in ("resolve_incident", "resolve_alert"):
        before = await _everything(engine)
        await FENCED_WRITES[method](writer)
        assert await _everything(engine) != before, method


# -- PostgreSQL: monitors racing on the one row ---------------------------------------------------


async def test_of_two_monitors_taking_over_the_same_lease_exactly_one_wins(
    pg: AsyncEngine, pg_url: str
) -> None:
    """Both queue on the row (held by a fenced write in flight); when it is free the first
    takes the lease and the second finds it changed."""
    stores = [LeaseStore(pg)] + [LeaseStore(open_engine(pg_url)) for _ in range(2)]
    try:
        seen = await stores[0].acquire("m0", ttl=TTL, now=DAY0, expected=None)
        assert seen is not None
        for round_ in range(3):
            async with pg.begin() as in_flight:
                await stores[0].fence(seen)(in_flight)
                takeovers = [
                    asyncio.create_task(
                        s.acquire(f"m{n}", ttl=TTL, now=DAY0 + round_, expected=seen)
                    )
                    for n, s in enumerate(stores[1:], start=1)
                ]
                await eventually(lambda: _waiting_on_locks(pg, 2), "both takeovers waiting")
            won = [lease for lease in await asyncio.gather(*takeovers) if lease is not None]
            assert len(won) == 1, won
            assert won[0].epoch == seen.epoch + 1
            assert await stores[0].read() == won[0]
            seen = won[0]
    finally:
        for s in stores[1:]:
            await s.engine.dispose()


async def test_of_two_monitors_taking_an_empty_lease_exactly_one_wins(
    pg: AsyncEngine, pg_url: str
) -> None:
    engines = [open_engine(pg_url) for _ in range(8)]
    try:
        taken = await asyncio.gather(
            *(
                LeaseStore(e).acquire(f"m{n}", ttl=TTL, now=DAY0, expected=None)
                for n, e in enumerate(engines)
            )
        )
    finally:
        for e in engines:
            await e.dispose()

    won = [lease for lease in taken if lease is not None]
    assert len(won) == 1 and won[0].epoch == 1
    assert await LeaseStore(pg).read() == won[0]


async def test_a_takeover_waits_for_the_write_in_flight_then_fences_it_out(
    pg: AsyncEngine, pg_url: str
) -> None:
    store = LeaseStore(pg)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    fence = store.fence(lease)
    standby = LeaseStore(open_engine(pg_url))
    try:
        async with pg.begin() as in_flight:  # what HistoryWriter's transactions do
            await fence(in_flight)
            takeover = asyncio.create_task(
                standby.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=lease)
            )
            await eventually(lambda: _waiting_on_locks(pg, 1), "the takeover waiting")
            assert not takeover.done()
            await in_flight.execute(checks.insert().values(target="api", at=DAY0, status="healthy"))
        taken = await takeover
    finally:
        await standby.engine.dispose()

    assert taken is not None and taken.epoch == 2
    assert await _count(pg, checks) == 1  # the write in flight was the old leader's, rightly
    async with pg.begin() as late:
        with pytest.raises(LeaseLost):
            await fence(late)


async def test_a_long_write_holds_off_a_takeover_but_not_the_leaders_renewals(
    pg: AsyncEngine, pg_url: str
) -> None:
    """A fenced write held open longer than the ttl (a retention, a slow disk): the leader's
    renewals go through meanwhile, each within a fraction of the ttl, so it is not deposed; a
    takeover still waits for the write, and the write's fence fails once it has committed."""
    store = LeaseStore(pg)
    lease = await store.acquire("m1", ttl=1.0, now=DAY0, expected=None)
    assert lease is not None
    fence = store.fence(lease)
    standby = LeaseStore(open_engine(pg_url))
    try:
        async with pg.begin() as in_flight:
            await fence(in_flight)
            await in_flight.execute(checks.insert().values(target="api", at=DAY0, status="healthy"))
            renewed: LeaderLease | None = lease
            held_since = time.monotonic()
            while time.monotonic() - held_since < 1.5 * lease.ttl:
                assert renewed is not None
                renewed = await asyncio.wait_for(
                    store.renew(renewed, now=DAY0 + 1), timeout=lease.ttl / 3
                )
                await asyncio.sleep(lease.ttl / 6)
            assert renewed is not None and renewed.beat >= 5, renewed

            takeover = asyncio.create_task(
                standby.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=renewed)
            )
            await eventually(lambda: _waiting_on_locks(pg, 1), "the takeover waiting")
            assert not takeover.done()
        taken = await takeover
    finally:
        await standby.engine.dispose()

    assert taken is not None and taken.epoch == 2
    assert await _count(pg, checks) == 1
    async with pg.begin() as late:
        with pytest.raises(LeaseLost):
            await fence(late)


async def test_a_release_waits_for_the_write_in_flight(pg: AsyncEngine) -> None:
    """A release, like a takeover, waits for the fenced write in flight: no write of the old
    holder commits after it."""
    store = LeaseStore(pg)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    fence = store.fence(lease)
    async with pg.begin() as in_flight:
        await fence(in_flight)
        release = asyncio.create_task(store.release(lease, now=DAY0 + 1))
        await eventually(lambda: _waiting_on_locks(pg, 1), "the release waiting")
        assert not release.done()
    await release
    released = await store.read()
    assert released is not None and released.holder == ""


async def test_a_takeover_waits_for_a_history_writers_write_in_flight(
    pg: AsyncEngine, pg_url: str
) -> None:
    """The same through ``HistoryWriter``: its write is held mid-transaction (after its fence,
    at a row another transaction holds); the takeover waits for it; once the takeover has
    committed, the writer's next write is refused."""
    store = LeaseStore(pg)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    writer = HistoryWriter(pg, fence=store.fence(lease))
    await writer.record_check(check(DAY0), replicas=[ReplicaCheck("10.0.0.5:8000", check(DAY0))])
    await writer.retire_replicas("api", ["10.0.0.5:8000"], DAY0 + 1)  # (its counter row exists)
    standby = LeaseStore(open_engine(pg_url))
    try:
        async with pg.begin() as blocker:
            await blocker.execute(
                text("SELECT 1 FROM revisions WHERE name = 'replicas' FOR UPDATE")
            )
            write = asyncio.create_task(writer.retire_replicas("api", ["10.0.0.6:8000"], DAY0 + 2))
            await eventually(lambda: _waiting_on_locks(pg, 1), "the write held mid-way")
            takeover = asyncio.create_task(
                standby.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=lease)
            )
            await eventually(lambda: _waiting_on_locks(pg, 2), "the takeover waiting for it")
            assert not write.done() and not takeover.done()
        await write  # it went through: it was in flight under the lease
        taken = await takeover
    finally:
        await standby.engine.dispose()

    assert taken is not None and taken.epoch == 2
    with pytest.raises(LeaseLost):
        await writer.retire_replicas("api", ["10.0.0.7:8000"], DAY0 + 10)


async def test_a_leader_gone_mid_write_does_not_hold_the_lease_for_ever(
    pg: AsyncEngine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leader whose host vanished with a fenced transaction open: PostgreSQL ends its
    session once it has sat idle for the limit the fence set, and the takeover goes through."""
    monkeypatch.setattr(lease_module, "MIN_WAIT", 0.0)
    store = LeaseStore(pg)
    lease = await store.acquire("m1", ttl=0.3, now=DAY0, expected=None)
    assert lease is not None
    standby = LeaseStore(open_engine(pg_url))
    try:
        async with pg.connect() as vanished:
            await vanished.begin()
            await store.fence(lease)(vanished)  # ... and then nothing: the leader is gone

            taken = await asyncio.wait_for(
                standby.acquire("m2", ttl=TTL, now=DAY0 + 9, expected=lease), timeout=10
            )

            assert taken is not None and taken.holder == "m2"
            with pytest.raises(Exception):  # noqa: B017,PT011 (its session was ended)
                await vanished.execute(text("SELECT 1"))
    finally:
        await standby.engine.dispose()


async def test_a_takeover_gives_up_waiting_on_a_row_held_for_too_long(
    pg: AsyncEngine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row held by a session that is not idle (a statement running for ever): the takeover
    waits for :func:`~monitor.store.leases.lock_wait`, then says the store is unavailable (the
    standby tries again at its next poll)."""
    monkeypatch.setattr(lease_module, "MIN_WAIT", 0.0)
    store = LeaseStore(pg)
    lease = await store.acquire("m1", ttl=TTL, now=DAY0, expected=None)
    assert lease is not None
    standby = LeaseStore(open_engine(pg_url))
    try:
        async with pg.begin() as holding:
            await holding.execute(text("SELECT 1 FROM monitor_lease FOR SHARE"))
            with pytest.raises(StoreUnavailable, match="waiting for a lock"):
                await asyncio.wait_for(
                    standby.acquire("m2", ttl=0.2, now=DAY0 + 9, expected=lease), timeout=10
                )
    finally:
        await standby.engine.dispose()
    assert await store.read() == lease


async def _waiting_on_locks(engine: AsyncEngine, count: int) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0) >= count


@pytest.mark.parametrize("method", sorted(UNFENCED_WRITES))
async def test_a_persons_write_goes_through_a_fenced_writer_after_a_takeover(
    engine: AsyncEngine, method: str
) -> None:
    """An ack or a silence from a process whose writer is fenced (or whose lease is gone) is
    still stored: it is an engineer's, not the deposed engine's."""
    writer = await _deposed_writer(engine)
    before = await _everything(engine)

    await UNFENCED_WRITES[method](writer)

    assert await _everything(engine) != before
