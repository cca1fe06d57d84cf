"""The leadership role loop (monitor.leadership) on a fake clock, over a real lease store: SQLite
and PostgreSQL (the lease's compare-and-swap and fence are the store's; the daemon a leader runs
is a small fake that records when it starts and stops).

Time moves only when a test moves it. The lease calls are real I/O, which the fake clock does not
wait for, so :func:`run_for` moves time in small steps and, between two, waits for every lease
call in flight to return (:class:`Watched` counts them): every task is then parked on the clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import MonitorConfig, Target
from monitor.leadership import Leadership, lease_ttl, monitor_id
from monitor.sqlite_lock import SQLiteStoreLock, StoreLocked, lock_sqlite_store
from monitor.store import (
    CheckRecord,
    LeaderLease,
    LeaseLost,
    Status,
    StoreUnavailable,
    create_schema,
    open_engine,
)
from monitor.store.leases import LeaseStore
from monitor.store.writer import HistoryWriter
from monitor.store.writing.base import Fence
from shared.resilience.testing import FakeClock, settle
from tests.monitor.store.support import migrated_store_url
from tests.support.polling import eventually

TTL = 3.0
STEP = TTL / 40
T = TypeVar("T")


# -- the lease store, watched -----------------------------------------------------------------


@dataclass
class Watched:
    """A monitor's own view of the real lease store: counts the calls in flight, records
    releases in ``events``, and can be cut off (``failing``: every call raises as an unreachable
    store does; ``hanging``: every call waits for ever, as one behind a dead network does)."""

    store: LeaseStore
    events: list[str]
    name: str
    clock: FakeClock
    failing: bool = False
    hanging: bool = False
    takeover_takes: float = 0.0
    """Seconds (on the clock) a takeover waits before it is made: on PostgreSQL it waits for
    the old leader's writes in flight."""
    in_flight: int = 0

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.hanging:
            await asyncio.Event().wait()
        if self.failing:
            raise StoreUnavailable("cannot reach the store: connection refused")
        self.in_flight += 1
        try:
            return await call()
        finally:
            self.in_flight -= 1

    async def read(self) -> LeaderLease | None:
        return await self._call(self.store.read)

    async def acquire(
        self, holder: str, *, ttl: float, now: float, expected: LeaderLease | None
    ) -> LeaderLease | None:
        if expected is not None and self.takeover_takes:
            await self.clock.sleep(self.takeover_takes)
        return await self._call(
            lambda: self.store.acquire(holder, ttl=ttl, now=now, expected=expected)
        )

    async def renew(self, lease: LeaderLease, *, now: float) -> LeaderLease | None:
        return await self._call(lambda: self.store.renew(lease, now=now))

    async def release(self, lease: LeaderLease, *, now: float) -> None:
        await self._call(lambda: self.store.release(lease, now=now))
        self.events.append(f"{self.name}: lease released")

    def fence(self, lease: LeaderLease) -> Fence:
        return self.store.fence(lease)


@dataclass
class FakeDaemon:
    name: str
    fence: Fence
    on_lease_lost: Callable[[], None]
    events: list[str]
    clock: FakeClock
    stop_takes: float = 0.0
    running: bool = False

    async def start(self) -> None:
        self.running = True
        self.events.append(f"{self.name}: daemon started")

    async def stop(self, grace: float = 10.0) -> None:
        if self.stop_takes:
            await self.clock.sleep(min(self.stop_takes, grace))  # checks in flight finishing
        self.running = False
        self.events.append(f"{self.name}: daemon stopped")


@dataclass
class Monitor:
    """One monitor: its engine and lease store, its role loop, and the daemons it ran."""

    name: str
    leases: Watched
    leadership: Leadership
    daemons: list[FakeDaemon] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def leads(self) -> bool:
        """Its daemon runs: what leading means to the rest of the world."""
        return any(daemon.running for daemon in self.daemons)

    def role(self) -> str:
        return self.leadership.role

    def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.ensure_future(self.leadership.run(self.stop))


@dataclass
class World:
    clock: FakeClock
    url: str
    events: list[str] = field(default_factory=list)
    monitors: list[Monitor] = field(default_factory=list)
    engines: list[AsyncEngine] = field(default_factory=list)

    async def engine(self) -> AsyncEngine:
        engine = open_engine(self.url)
        self.engines.append(engine)
        return engine

    async def lease_store(self) -> LeaseStore:
        return LeaseStore(await self.engine())

    async def monitor(
        self, name: str, *, sole: bool = False, stop_takes: float = 0.0, start: bool = True
    ) -> Monitor:
        leases = Watched(await self.lease_store(), self.events, name, self.clock)
        daemons: list[FakeDaemon] = []

        def daemon(fence: Fence, on_lease_lost: Callable[[], None]) -> FakeDaemon:
            made = FakeDaemon(name, fence, on_lease_lost, self.events, self.clock, stop_takes)
            daemons.append(made)
            return made

        leadership = Leadership(leases, daemon, monitor=name, ttl=TTL, clock=self.clock, sole=sole)
        monitor = Monitor(name, leases, leadership, daemons)
        self.monitors.append(monitor)
        if start:
            monitor.start()
            await self.quiet()
        return monitor

    async def quiet(self) -> None:
        """Until no lease call is in flight and every task waits on the clock or an event."""

        async def idle() -> bool:
            await settle()
            if any(m.leases.in_flight for m in self.monitors):
                return False
            await settle()
            return not any(m.leases.in_flight for m in self.monitors)

        await eventually(idle, "the lease calls in flight to return", within=10, every=0.001)

    async def run_for(self, seconds: float, *, check: Callable[[], None] | None = None) -> None:
        """Move the clock ``seconds`` on, in steps of ``STEP``; ``check`` after each."""
        end = self.clock.monotonic() + seconds
        while (left := end - self.clock.monotonic()) > 1e-9:
            await self.clock.advance(min(STEP, left))
            await self.quiet()
            if check is not None:
                check()

    async def stop(self, monitor: Monitor) -> None:
        monitor.stop.set()
        assert monitor.task is not None
        while not monitor.task.done():
            await self.run_for(STEP)
        await monitor.task


@pytest.fixture(params=["sqlite", "postgresql"])
def lease_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # A copy of the session's migrated store (_world's create_schema finds it at head).
    yield from migrated_store_url(request.param, request, tmp_path)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_store_url("postgresql", request, tmp_path)


async def _world(url: str) -> AsyncIterator[World]:
    engine = open_engine(url)
    try:
        await create_schema(engine)
    finally:
        await engine.dispose()
    world = World(FakeClock(), url)
    try:
        yield world
    finally:
        for monitor in world.monitors:
            monitor.leases.hanging = False
            monitor.stop.set()
        for monitor in world.monitors:
            if monitor.task is not None and not monitor.task.done():
                monitor.task.cancel()
                await asyncio.gather(monitor.task, return_exceptions=True)
        for engine in world.engines:
            await engine.dispose()


@pytest.fixture
async def world(lease_url: str) -> AsyncIterator[World]:
    async for made in _world(lease_url):
        yield made


@pytest.fixture
async def pg_world(postgres_url: str) -> AsyncIterator[World]:
    async for made in _world(postgres_url):
        yield made


async def ghost_lease(world: World, holder: str = "ghost") -> tuple[LeaseStore, LeaderLease]:
    """A lease held by a monitor the test plays by hand (a leader that dies when the test stops
    renewing)."""
    store = await world.lease_store()
    lease = await store.acquire(holder, ttl=TTL, now=world.clock.wall(), expected=None)
    assert lease is not None
    return store, lease


# -- taking over ----------------------------------------------------------------------------------


async def test_a_standby_takes_over_a_ttl_after_the_last_beat_and_not_before(world: World) -> None:
    store, ghost = await ghost_lease(world)
    standby = await world.monitor("b")
    assert standby.role() == "standby"

    # While the ghost renews every ttl/3, the standby waits, however long.
    for _ in range(12):
        await world.run_for(TTL / 3)
        renewed = await store.renew(ghost, now=world.clock.wall())
        assert renewed is not None
        ghost = renewed
        assert standby.role() == "standby"
    last_beat = world.clock.monotonic()

    # The beats stop: the standby still waits until a ttl has passed since it saw the last one
    # (it sees each within a poll, ttl/4)...
    await world.run_for(TTL - STEP)
    assert standby.role() == "standby"
    assert not standby.daemons
    # ...and has taken over by a ttl and a poll after the last beat.
    await world.run_for(TTL / 4 + 2 * STEP)
    assert standby.role() == "leader"
    assert standby.leads()
    taken = await store.read()
    assert taken is not None
    assert (taken.holder, taken.epoch) == ("b", ghost.epoch + 1)
    assert world.clock.monotonic() - last_beat <= TTL + TTL / 4 + 2 * STEP
    # The ghost, back from a pause, finds its lease gone.
    assert await store.renew(ghost, now=world.clock.wall()) is None


async def test_a_leader_that_stops_stops_its_daemon_then_releases_and_a_standby_takes_over_at_once(
    world: World,
) -> None:
    leader = await world.monitor("a")
    standby = await world.monitor("b")
    assert (leader.role(), standby.role()) == ("leader", "standby")
    await world.run_for(2 * TTL)  # renewals keep it
    assert leader.leads() and not standby.daemons

    leader.stop.set()
    await world.quiet()
    assert world.events[-2:] == ["a: daemon stopped", "a: lease released"]
    released = world.clock.monotonic()
    await world.run_for(TTL / 4 + STEP)
    assert standby.leads()
    assert world.clock.monotonic() - released < TTL / 2  # not a ttl's wait: the release
    assert leader.task is not None and leader.task.done()
    await leader.task


async def test_a_stopping_leader_keeps_renewing_while_its_daemon_finishes(world: World) -> None:
    leader = await world.monitor("a", stop_takes=3 * TTL)
    standby = await world.monitor("b")

    leader.stop.set()
    await world.run_for(3 * TTL - STEP, check=lambda: assert_not(standby.leads()))
    await world.run_for(TTL / 4 + 2 * STEP)
    assert world.events.index("a: daemon stopped") < world.events.index("a: lease released")
    assert standby.leads()


def assert_not(leads: bool) -> None:
    assert not leads


async def test_a_takeover_that_waited_long_does_not_cost_the_new_leader_its_first_renewal(
    world: World,
) -> None:
    """A takeover that waited most of a ttl for the old leader's writes in flight: the new
    leader's first renewal is due a ttl after the takeover returned, not after it was sent."""
    store, _ = await ghost_lease(world)
    standby = await world.monitor("b")
    standby.leases.takeover_takes = 0.9 * TTL
    await world.run_for(TTL + TTL / 4 + STEP)  # the ghost is dead: the takeover starts...
    await world.run_for(TTL)  # ...and returns
    assert standby.role() == "leader"

    await world.run_for(3 * TTL, check=lambda: assert_leads(standby))
    current = await store.read()
    assert current is not None and current.holder == "b" and current.beat >= 5


def assert_leads(monitor: Monitor) -> None:
    assert monitor.role() == "leader" and monitor.leads(), monitor.leadership.role


async def test_a_standby_that_wins_no_swap_keeps_standing_by(world: World) -> None:
    """Two standbys see the same dead lease at the same instant; one wins the compare-and-swap."""
    store, ghost = await ghost_lease(world)
    b = await world.monitor("b")
    c = await world.monitor("c")
    await world.run_for(TTL + TTL / 4 + STEP)
    assert [b.leads(), c.leads()].count(True) == 1
    current = await store.read()
    assert current is not None and current.epoch == ghost.epoch + 1


async def test_on_sqlite_the_sole_monitor_takes_the_lease_of_a_killed_one_at_once(
    world: World,
) -> None:
    store, ghost = await ghost_lease(world, "killed")  # its beat fresh: it died a moment ago
    sole = await world.monitor("b", sole=True)
    assert sole.leads()
    current = await store.read()
    assert current is not None and (current.holder, current.epoch) == ("b", ghost.epoch + 1)


# -- losing the lease -----------------------------------------------------------------------------


async def test_a_leader_whose_lease_was_taken_steps_down_at_its_next_renewal(world: World) -> None:
    leader = await world.monitor("a")
    store = await world.lease_store()
    held = await store.read()
    assert held is not None
    stolen = await store.acquire("thief", ttl=TTL, now=world.clock.wall(), expected=held)
    assert stolen is not None

    await world.run_for(TTL / 3 + STEP)
    assert not leader.leads()
    assert leader.role() == "standby"
    assert "a: daemon stopped" in world.events
    assert "a: lease released" not in world.events  # not its own to release


async def test_a_leader_whose_write_found_the_lease_lost_steps_down_at_once(world: World) -> None:
    leader = await world.monitor("a")
    leader.daemons[0].on_lease_lost()
    await world.quiet()
    assert not leader.leads()
    assert leader.role() == "standby"


@pytest.mark.parametrize("cut", ["failing", "hanging"])
async def test_a_leader_that_cannot_renew_for_a_ttl_steps_down_then_and_not_before(
    world: World, cut: str
) -> None:
    leader = await world.monitor("a")
    await world.run_for(TTL / 3)  # renewed just now
    setattr(leader.leases, cut, True)
    renewed_at = world.clock.monotonic()

    await world.run_for(TTL - STEP)
    assert leader.leads()
    await world.run_for(TTL / 3 + STEP)
    assert not leader.leads()
    assert world.clock.monotonic() - renewed_at <= TTL + TTL / 3 + STEP


# -- two monitors on one PostgreSQL -------------------------------------------------------------


async def test_two_monitors_on_one_postgresql_never_lead_at_once(pg_world: World) -> None:
    """A seeded run of stops, restarts, crashes and cut-off stores: at no step do both daemons
    run, and someone leads again within a ttl and two polls of every loss."""
    world = pg_world
    a = await world.monitor("a")
    b = await world.monitor("b")
    monitors = [a, b]
    epochs: list[int] = []

    def one_at_most() -> None:
        assert [m.leads() for m in monitors].count(True) <= 1, world.events[-6:]

    rng = random.Random(13)
    for _ in range(40):
        leader = next((m for m in monitors if m.leads()), None)
        action = rng.choice(["wait", "cut", "stop", "crash"])
        if leader is not None and action == "cut":
            leader.leases.failing = True
        elif leader is not None and action == "stop":
            leader.stop.set()
        elif leader is not None and action == "crash":
            # kill -9: the loop vanishes without a word, its daemon with it.
            assert leader.task is not None
            leader.task.cancel()
            await asyncio.gather(leader.task, return_exceptions=True)
            for daemon in leader.daemons:
                daemon.running = False
        await world.run_for(TTL + TTL / 2 + STEP, check=one_at_most)
        for monitor in monitors:  # heal and restart whatever stopped
            monitor.leases.failing = False
            if monitor.task is None or monitor.task.done():
                monitor.start()
        await world.run_for(TTL / 4 + STEP, check=one_at_most)
        current = await (await world.lease_store()).read()
        assert current is not None
        if not epochs or current.epoch != epochs[-1]:
            epochs.append(current.epoch)
        assert [m.leads() for m in monitors].count(True) == 1, (action, world.events[-6:])
    assert epochs == sorted(set(epochs))  # every leader under a newer epoch
    assert len(epochs) > 10


async def test_a_deposed_leaders_fenced_writes_are_refused(world: World) -> None:
    leader = await world.monitor("a")
    standby = await world.monitor("b")
    engine = await world.engine()
    old = HistoryWriter(engine, fence=leader.daemons[0].fence)
    first = world.clock.wall()
    await old.record_check(check(first))

    leader.leases.hanging = True  # paused: no renewal, and nothing it notices
    await world.run_for(TTL + TTL / 4 + STEP)
    assert standby.leads()
    new = HistoryWriter(engine, fence=standby.daemons[0].fence)

    with pytest.raises(LeaseLost):
        await old.record_check(check(first + 1))
    await new.record_check(check(first + 2))
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT at FROM checks ORDER BY at"))).scalars()
        assert list(stored) == [first, first + 2]


def check(at: float) -> CheckRecord:
    return CheckRecord(
        target="api",
        at=at,
        status=Status.HEALTHY,
        latency_ms=5.0,
        http_status=200,
        error=None,
        services=(),
    )


# -- the monitor's id and the ttl rule ------------------------------------------------------------


def test_the_monitor_id_is_the_environments_else_host_and_pid() -> None:
    assert monitor_id({"QUESTCITY_MONITOR_ID": "monitor-7f9c"}) == "monitor-7f9c"
    assert monitor_id({"QUESTCITY_MONITOR_ID": "  "}).rsplit("-", 1)[1].isdigit()
    hostile = monitor_id({"QUESTCITY_MONITOR_ID": "[red]x[/red]\n" + "y" * 500})
    assert hostile.startswith("red-x-red-y") and len(hostile) == 64


def _config(*intervals: float, lease: float | None = None) -> MonitorConfig:
    targets = tuple(
        Target(f"t{n}", "http://127.0.0.1:9", interval=i, timeout=0.5)
        for n, i in enumerate(intervals)
    )
    return MonitorConfig(path=Path("monitor.toml"), targets=targets, lease_ttl=lease)


def test_the_ttl_is_the_configured_one_else_six_tenths_of_the_shortest_interval() -> None:
    assert lease_ttl(_config(10, 4)) == pytest.approx(2.4)
    assert lease_ttl(_config(10)) == pytest.approx(6.0)
    assert lease_ttl(_config(0.5)) == 1.0  # at least 1 s
    assert lease_ttl(_config(600)) == 60.0  # at most 60 s
    assert lease_ttl(_config(10, lease=2.5)) == 2.5


# -- one monitor per SQLite file --------------------------------------------------------------


def test_a_second_lock_on_a_sqlite_store_is_refused_naming_the_holder(tmp_path: Path) -> None:
    database = str(tmp_path / "monitor.db")
    with SQLiteStoreLock(database):
        with pytest.raises(StoreLocked) as refused:
            SQLiteStoreLock(database).acquire()
        assert refused.value.pid is not None
        assert f"another monitor (pid {refused.value.pid}) already runs on {database}" in str(
            refused.value
        )
    with SQLiteStoreLock(database):  # released: the next monitor may start
        pass


@pytest.mark.parametrize("link", ["file", "folder", "relative"])
def test_one_sqlite_file_named_another_way_is_still_locked(
    tmp_path: Path, link: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second monitor whose URL reaches the same file through a symlink (to the file, or to
    its folder) or a relative path is refused all the same."""
    (tmp_path / "data").mkdir()
    database = tmp_path / "data" / "monitor.db"
    database.touch()
    if link == "file":
        other = tmp_path / "link.db"
        other.symlink_to(database)
    elif link == "folder":
        (tmp_path / "mounted").symlink_to(tmp_path / "data")
        other = tmp_path / "mounted" / "monitor.db"
    else:
        monkeypatch.chdir(tmp_path)
        other = Path("data/monitor.db")

    first = lock_sqlite_store(f"sqlite:///{database}")
    assert first is not None
    with first, pytest.raises(StoreLocked) as refused:
        lock_sqlite_store(f"sqlite:///{other}")
    assert str(other) in str(refused.value)  # (the file as the refused monitor named it)


def test_postgresql_and_in_memory_stores_take_no_lock() -> None:
    assert lock_sqlite_store("postgresql://monitor@127.0.0.1/monitor") is None
    assert lock_sqlite_store("sqlite:///:memory:") is None
