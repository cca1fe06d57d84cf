"""The daemon against a fleet: three fake replicas behind a real DNS name, on a real store (SQLite
and PostgreSQL). Every replica's check lands in the store, the target's record follows the
aggregate rule, a replica gone from DNS is retired (not down), a failed lookup keeps the set, and
a monitor that lost the lease stops writing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from monitor.config import MonitorConfig, Target, parse_config
from monitor.daemon import DISCOVERY_FAILED, MonitorDaemon
from monitor.discovery import Discovery, Replica
from monitor.replica_sets import LOOKUP_TIMED_OUT
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    IncidentState,
    Instance,
    ReplicaState,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.leases import LeaseStore
from monitor.store.schema import checks
from monitor.store.writer import REFUSED
from shared.resilience.testing import FakeClock
from tests.monitor.fake_backend import FakeBackend, detailed
from tests.monitor.store.support import empty_store_url
from tests.support.dns_server import DNSServer

ENV = {"QUESTCITY_MONITOR_TOKEN": "operator-token"}
ADDRESSES = ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
KEYS = [f"{a}:8000" for a in ADDRESSES]
STARTED = 1_799_990_000.0


class Fleet:
    """One FakeBackend per replica address, behind one transport routing by host."""

    def __init__(self, addresses: list[str]) -> None:
        self.backends: dict[str, FakeBackend] = {}
        for n, address in enumerate(addresses):
            self.backends[address] = FakeBackend()
            self.set(address, detailed())
            self.backends[address].document["instance"] = {
                "id": f"api-{n}",
                "started_at": STARTED + n,
            }
        self.transport = httpx.MockTransport(self.handle)

    def set(self, address: str, document: dict[str, object]) -> None:
        backend = self.backends[address]
        instance = backend.document.get("instance")
        backend.document = {**document, "instance": instance}

    def handle(self, request: httpx.Request) -> httpx.Response:
        backend = self.backends.get(request.url.host)
        if backend is None:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return backend.handle(request)

    def asked(self) -> list[str]:
        return sorted(
            f"{address}:{request.url.port}"
            for address, backend in self.backends.items()
            for request in backend.requests
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(request.param, request, tmp_path)


@pytest.fixture
async def dns_server() -> AsyncIterator[DNSServer]:
    server = DNSServer()
    server.records = {"api.test.": list(ADDRESSES)}
    await server.start()
    yield server
    server.stop()


@pytest.fixture
def fleet() -> Fleet:
    return Fleet(ADDRESSES)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=1_800_000_000.0)


def fleet_config(
    store_url: str,
    dns_server: DNSServer,
    *,
    replicas: str = 'replicas = ["dns:api.test:8000"]',
    tail: str = "",
) -> MonitorConfig:
    """The fleet's config; ``replicas``: the target's replica lines, ``tail``: more tables."""
    return parse_config(
        f"""
[storage]
url = "{store_url}"

[dns]
nameservers = ["127.0.0.1:{dns_server.port}"]

[[targets]]
name = "questcity-api"
url = "http://api.test:8000"
interval = 10
timeout = 5
token_env = "QUESTCITY_MONITOR_TOKEN"
{replicas}
{tail}
""",
        Path("monitor.toml"),
    )


def new_daemon(
    store_url: str,
    dns_server: DNSServer,
    fleet: Fleet,
    clock: FakeClock,
    *,
    config: MonitorConfig | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    discovery: Discovery | None = None,
    **options: object,
) -> MonitorDaemon:
    config = config or fleet_config(store_url, dns_server)
    return MonitorDaemon(
        config,
        clock=clock,
        write_window=0.0,
        transport=transport or fleet.transport,
        environ=ENV,
        discovery=discovery or Discovery(config.dns_nameservers, timeout=0.3),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def daemon(
    store_url: str, dns_server: DNSServer, fleet: Fleet, clock: FakeClock
) -> AsyncIterator[MonitorDaemon]:
    daemon = new_daemon(store_url, dns_server, fleet, clock)
    await daemon.prepare()
    yield daemon
    await daemon.stop()


async def round_(daemon: MonitorDaemon, clock: FakeClock) -> Status:
    record = await daemon.check_target(daemon.config.targets[0])
    await clock.advance(10.0)
    return record.status


async def states(daemon: MonitorDaemon, *, retired: bool = False) -> dict[str, ReplicaState]:
    return {
        s.replica: s for s in await daemon.reader.replicas("questcity-api", include_retired=retired)
    }


async def test_every_replica_is_stored_and_the_target_is_their_aggregate(
    daemon: MonitorDaemon, fleet: Fleet, clock: FakeClock
) -> None:
    fleet.set("10.0.0.7", detailed(status="degraded", s3="unhealthy", s3_breaker="open"))
    assert await round_(daemon, clock) is Status.DEGRADED
    assert fleet.asked() == KEYS  # each replica probed once, at its own address
    rows = await states(daemon)
    assert list(rows) == KEYS
    assert [rows[k].instance for k in KEYS] == [Instance(f"api-{n}", STARTED + n) for n in range(3)]
    assert [rows[k].status for k in KEYS] == [Status.HEALTHY, Status.HEALTHY, Status.DEGRADED]
    s3_of_7 = {s.service: s for s in rows["10.0.0.7:8000"].services}["s3"]
    assert (s3_of_7.status, s3_of_7.breaker_state) == (Status.UNHEALTHY, "open")
    latest = await daemon.reader.latest("questcity-api")
    assert latest is not None
    services = {s.service: s for s in latest.record.services}
    # one of three unhealthy: degraded; the worst breaker; no replica's figures in the aggregate
    assert (services["s3"].status, services["s3"].breaker_state) == (Status.DEGRADED, "open")
    assert services["s3"].details == {}
    assert services["database"].status is Status.HEALTHY

    fleet.backends["10.0.0.5"].mode = "dead"
    fleet.backends["10.0.0.6"].mode = "dead"
    assert await round_(daemon, clock) is Status.UNHEALTHY  # a majority down, not all
    latest = await daemon.reader.latest("questcity-api")
    assert latest is not None and latest.record.error == "2/3 replicas unreachable"
    rows = await states(daemon)
    assert [rows[k].status for k in KEYS] == [
        Status.UNREACHABLE,
        Status.UNREACHABLE,
        Status.DEGRADED,
    ]
    assert rows["10.0.0.5:8000"].error == "connection refused"


async def test_a_target_without_replicas_is_its_own_replica_and_writes_no_replica_rows(
    store_url: str, dns_server: DNSServer, clock: FakeClock
) -> None:
    """One backend, one replica: its checks are the target's own, and no second row says it
    again (a thousand single-backend targets would write twice as much for nothing)."""
    fleet = Fleet(["api.test"])
    fleet.set("api.test", detailed(status="degraded", s3="unhealthy", s3_breaker="open"))
    daemon = new_daemon(
        store_url, dns_server, fleet, clock, config=fleet_config(store_url, dns_server, replicas="")
    )
    await daemon.prepare()
    try:
        assert await round_(daemon, clock) is Status.DEGRADED
        assert fleet.asked() == ["api.test:8000"]
        latest = await daemon.reader.latest("questcity-api")
        assert latest is not None and latest.record.status is Status.DEGRADED
        assert await states(daemon, retired=True) == {}
    finally:
        await daemon.stop()


async def test_a_replica_gone_from_dns_is_retired_not_down(
    daemon: MonitorDaemon, dns_server: DNSServer, fleet: Fleet, clock: FakeClock
) -> None:
    assert await round_(daemon, clock) is Status.HEALTHY
    dns_server.records = {"api.test.": ["10.0.0.5", "10.0.0.6"]}  # a pod scaled away
    assert await round_(daemon, clock) is Status.HEALTHY
    assert list(await states(daemon)) == KEYS[:2]
    gone = (await states(daemon, retired=True))["10.0.0.7:8000"]
    assert gone.status is Status.HEALTHY  # as last seen: retired, never "down"
    assert gone.retired_at == 1_800_000_010.0
    latest = await daemon.reader.latest("questcity-api")
    assert latest is not None and latest.record.error is None

    dns_server.records = {"api.test.": ["10.0.0.5", "10.0.0.6", "10.0.0.8"]}  # one added
    fleet.backends["10.0.0.8"] = FakeBackend()
    await round_(daemon, clock)
    assert list(await states(daemon)) == [*KEYS[:2], "10.0.0.8:8000"]


async def test_a_failed_lookup_keeps_the_last_set_and_is_logged_once(
    daemon: MonitorDaemon,
    dns_server: DNSServer,
    fleet: Fleet,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await round_(daemon, clock)
    dns_server.mode = "silent"
    with caplog.at_level(logging.INFO, logger="monitor"):
        for _ in range(3):
            assert await round_(daemon, clock) is Status.HEALTHY
        dns_server.mode = "normal"
        await round_(daemon, clock)
    assert len(fleet.asked()) == 3 * 5  # every replica, every round
    assert list(await states(daemon)) == KEYS  # nothing retired
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("discovery_failed") == 1
    assert events.count("discovery_recovered") == 1


async def test_a_restart_during_a_dns_outage_probes_the_replicas_the_store_knows(
    store_url: str, dns_server: DNSServer, fleet: Fleet, clock: FakeClock
) -> None:
    first = new_daemon(store_url, dns_server, fleet, clock)
    await first.prepare()
    await round_(first, clock)
    await first.stop()
    dns_server.mode = "servfail"
    second = new_daemon(store_url, dns_server, fleet, clock)
    await second.prepare()
    try:
        assert await round_(second, clock) is Status.HEALTHY
        assert len(fleet.asked()) == 6
        assert list(await states(second)) == KEYS
    finally:
        await second.stop()


async def test_never_known_replicas_and_a_failed_lookup_is_a_failed_round(
    daemon: MonitorDaemon, dns_server: DNSServer, fleet: Fleet, clock: FakeClock
) -> None:
    dns_server.mode = "servfail"
    assert await round_(daemon, clock) is Status.UNREACHABLE
    latest = await daemon.reader.latest("questcity-api")
    assert latest is not None and latest.record.error == DISCOVERY_FAILED
    assert "api.test" not in DISCOVERY_FAILED
    assert fleet.asked() == []


async def test_a_lost_lease_stops_the_writes_logged_once_without_a_trace(
    store_url: str,
    dns_server: DNSServer,
    fleet: Fleet,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = open_engine(store_url)
    try:
        await create_schema(engine)
        leases = LeaseStore(engine)
        lease = await leases.acquire("monitor-a", ttl=10, now=clock.wall(), expected=None)
        assert lease is not None
        lost: list[str] = []
        daemon = new_daemon(
            store_url,
            dns_server,
            fleet,
            clock,
            fence=leases.fence(lease),
            on_lease_lost=lambda: lost.append("lost"),
        )
        await daemon.prepare()
        try:
            await round_(daemon, clock)
            assert await leases.acquire("monitor-b", ttl=10, now=clock.wall(), expected=lease)
            with caplog.at_level(logging.INFO, logger="monitor"):
                await round_(daemon, clock)
                await round_(daemon, clock)
            async with daemon.engine.connect() as connection:
                stored = await connection.scalar(select(func.count()).select_from(checks))
        finally:
            await daemon.stop()
    finally:
        await engine.dispose()
    assert lost == ["lost"]
    assert stored == 1  # the first round only
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "lease_lost"]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]


# -- expected_replicas: pods gone from the answer count as down ----------------------------------


async def test_pods_gone_from_dns_below_expected_replicas_are_an_outage(
    store_url: str, dns_server: DNSServer, fleet: Fleet, clock: FakeClock
) -> None:
    # Kubernetes drops crash-looping pods from the headless Service's answer: 2 of 3 pods down
    # must not read as one healthy replica.
    config = fleet_config(
        store_url,
        dns_server,
        replicas='replicas = ["dns:api.test:8000"]\nexpected_replicas = 3',
    )
    daemon = new_daemon(store_url, dns_server, fleet, clock, config=config)
    await daemon.prepare()
    try:
        assert await round_(daemon, clock) is Status.HEALTHY
        dns_server.records = {"api.test.": ["10.0.0.5"]}
        assert await round_(daemon, clock) is Status.UNHEALTHY
        assert await round_(daemon, clock) is Status.UNHEALTHY
        latest = await daemon.reader.latest("questcity-api")
        assert latest is not None and latest.record.error == "2/3 replicas missing"
        [incident] = await daemon.reader.incidents()
        assert (incident.target, incident.state, incident.impact) == (
            "questcity-api",
            IncidentState.OPEN,
            Status.UNHEALTHY,
        )
        assert list(await states(daemon)) == KEYS[:1]  # the others' rows are retired all the same

        dns_server.records = {"api.test.": []}  # every pod gone
        assert await round_(daemon, clock) is Status.UNREACHABLE
        latest = await daemon.reader.latest("questcity-api")
        assert latest is not None and latest.record.error == "3/3 replicas missing"
    finally:
        await daemon.stop()


# -- one deadline a round: the probes get what the lookup left -----------------------------------


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url("sqlite", request, tmp_path)


class SlowDiscovery(Discovery):
    """Answers the fleet's three replicas after ``delay`` seconds of the test's clock."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.delay = 0.0

    async def replicas(self, target: Target) -> list[Replica]:
        await self.clock.sleep(self.delay)
        return [Replica(key, f"http://{key}") for key in KEYS]


def hanging(clock: FakeClock) -> httpx.MockTransport:
    """Replicas that accept the request and never answer (until the test's clock says so)."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await clock.sleep(3600)
        return httpx.Response(200)

    return httpx.MockTransport(hang)


async def finished_at(check: asyncio.Future[Any], clock: FakeClock, deadline: float) -> None:
    """The check has not ended just before ``deadline`` (of the clock) and ends at it: after the
    last clock step it needs no more fake time, only its real store write."""
    await clock.advance(deadline - 0.01 - clock.monotonic())
    assert not check.done()
    await clock.advance(0.01)
    await asyncio.wait_for(check, BOUND)


BOUND = 10.0
"""Real seconds after which a broken test fails instead of hanging: a bound, never a wait."""


async def test_a_slow_lookup_leaves_the_probes_only_the_rest_of_the_timeout(
    sqlite_url: str, dns_server: DNSServer, fleet: Fleet, clock: FakeClock
) -> None:
    discovery = SlowDiscovery(clock)
    discovery.delay = 2.0  # within the lookup's share (half of the 5 s timeout)
    daemon = new_daemon(
        sqlite_url, dns_server, fleet, clock, transport=hanging(clock), discovery=discovery
    )
    await daemon.prepare()
    try:
        started = clock.monotonic()
        check = asyncio.ensure_future(daemon.check_target(daemon.config.targets[0]))
        await finished_at(check, clock, started + 5.0)  # the target's timeout, not 2 + 5 s
        assert check.result().status is Status.UNREACHABLE
        rows = await states(daemon)
        assert [(rows[k].error, rows[k].latency_ms) for k in KEYS] == [("timeout", 3000.0)] * 3
    finally:
        await daemon.stop()


async def test_a_lookup_that_never_answers_is_cut_and_the_last_set_probed_in_time(
    sqlite_url: str,
    dns_server: DNSServer,
    fleet: Fleet,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    discovery = SlowDiscovery(clock)
    daemon = new_daemon(
        sqlite_url, dns_server, fleet, clock, transport=hanging(clock), discovery=discovery
    )
    await daemon.prepare()
    try:
        check = asyncio.ensure_future(daemon.check_target(daemon.config.targets[0]))
        await finished_at(check, clock, clock.monotonic() + 5.0)
        discovery.delay = 3600.0  # DNS stops answering
        started = clock.monotonic()
        with caplog.at_level(logging.INFO, logger="monitor"):
            check = asyncio.ensure_future(daemon.check_target(daemon.config.targets[0]))
            await finished_at(check, clock, started + 5.0)
        rows = await states(daemon)
        assert list(rows) == KEYS  # the last known set, probed with the half the lookup left
        assert [(rows[k].error, rows[k].latency_ms) for k in KEYS] == [("timeout", 2500.0)] * 3
        failed = [r for r in caplog.records if getattr(r, "event", None) == "discovery_failed"]
        assert [r.getMessage() for r in failed] == [
            f"questcity-api: {LOOKUP_TIMED_OUT}; checking the replicas last known"
        ]
    finally:
        await daemon.stop()


# -- a check the store refuses: alerts judge what incidents judge --------------------------------


@pytest.mark.parametrize("replicas", ["", 'replicas = ["dns:api.test:8000"]'])
async def test_a_check_the_store_refuses_is_judged_by_alerts_as_stored(
    sqlite_url: str,
    dns_server: DNSServer,
    fleet: Fleet,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    replicas: str,
) -> None:
    config = fleet_config(
        sqlite_url, dns_server, replicas=replicas, tail="[alerts]\nunreachable_for = 0"
    )
    if not replicas:  # one replica: the target's url
        fleet.backends["api.test"] = fleet.backends["10.0.0.5"]
    daemon = new_daemon(sqlite_url, dns_server, fleet, clock, config=config)
    await daemon.prepare()
    writer = daemon.writer
    record_check = writer.record_check

    async def refused(record: CheckRecord, **options: Any) -> CheckRecord:
        # A number no column takes: the real store refuses the check and keeps a failed one.
        hostile = (ServiceSample("database", Status.HEALTHY, 5.0, 10**30, "closed", {}),)
        return await record_check(dataclasses.replace(record, services=hostile), **options)

    monkeypatch.setattr(writer, "record_check", refused)
    try:
        assert await round_(daemon, clock) is Status.UNREACHABLE  # the replicas answered fine
        [alert] = await daemon.reader.alerts()
        assert (alert.rule, alert.target, alert.service) == (
            "target_unreachable",
            "questcity-api",
            TARGET_COMPONENT,
        )
        assert REFUSED in alert.summary
    finally:
        await daemon.stop()
