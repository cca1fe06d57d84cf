"""The alert rules over a target's replicas (ARCHITECTURE §11, issue #13): each replica judged on
its own samples, in windows of one process; one alert per rule and component, naming where it
holds. Synthetic rounds with explicit timestamps, on the real SQLite store."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.alerts import AlertEngine
from monitor.config import AlertRules
from monitor.notifiers import Dispatcher
from monitor.store import (
    CheckRecord,
    HistoryReader,
    Instance,
    ReplicaCheck,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from shared.resilience.testing import settle
from tests.monitor.test_alerts import T0, Recording, engine_of, sample

A, B, C = "10.0.0.5:8000", "10.0.0.6:8000", "10.0.0.7:8000"
STARTED = T0 - 3600.0


@pytest.fixture
async def store(
    tmp_path: Path, _migrated_sqlite: Path
) -> AsyncIterator[tuple[HistoryWriter, HistoryReader]]:
    shutil.copyfile(_migrated_sqlite, tmp_path / "alerts.db")  # the session's migrated store
    engine = open_engine(f"sqlite:///{tmp_path}/alerts.db")
    await create_schema(engine)
    yield HistoryWriter(engine), HistoryReader(engine)
    # The notices' marks are written in the background: let them end before the store closes.
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others, timeout=5.0)
    await engine.dispose()


def replica(
    key: str,
    at: float,
    *services: ServiceSample,
    instance: str | None = "",
    started: float = STARTED,
    status: Status = Status.HEALTHY,
    error: str | None = None,
) -> ReplicaCheck:
    """What one replica answered at ``T0 + at``; its instance is ``web-<last digit>`` unless
    given (None: it did not say)."""
    name = f"web-{key.split(':')[0][-1]}" if instance == "" else instance
    record = CheckRecord("api", T0 + at, status, 10.0, None, error, services)
    return ReplicaCheck(key, record, None if name is None else Instance(name, started))


def unreachable(key: str, at: float) -> ReplicaCheck:
    return replica(key, at, instance=None, status=Status.UNREACHABLE, error="timeout")


def aggregate(at: float, checks: list[ReplicaCheck]) -> CheckRecord:
    """The target's record from its replicas' (the daemon's rule, enough of it for these tests:
    the engine judges the replicas, not this)."""
    statuses = {c.record.status for c in checks}
    if statuses == {Status.UNREACHABLE}:
        status = Status.UNREACHABLE
    else:
        status = Status.HEALTHY if statuses == {Status.HEALTHY} else Status.DEGRADED
    return CheckRecord("api", T0 + at, status, 10.0, 200, None, ())


async def rounds(engine: AlertEngine, *each: list[ReplicaCheck]) -> None:
    for checks in each:
        await engine.observe(aggregate(checks[0].record.at - T0, checks), checks)
    await settle()


def pool(refused: int, *, breaker: str = "closed") -> ServiceSample:
    return sample("database", breaker=breaker, details={"exhausted_total": refused})


def s3(successes: int, failures: int) -> ServiceSample:
    counters = {"successful_calls": successes, "failed_calls": failures, "rejected_calls": 0}
    return sample("s3", circuit_breaker=counters)


async def test_two_replicas_whose_counters_differ_raise_nothing(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    """The issue's pair: pool counters of 3 and 7, never moving. Read through the load balancer
    (one replica or the other at each check, as one) they alarm; the seed's engine made 11
    firing/resolved notices of these 12 checks."""
    writer, reader = store
    pair = [(A, 3), (B, 7)]
    through_the_balancer = Recording()
    mixed = engine_of(AlertRules(), writer, Dispatcher([through_the_balancer]), reader)
    for n in range(12):
        key, refused = pair[n % 2]
        await mixed.observe(replica(key, n * 10.0, pool(refused)).record)
    await settle()
    assert [n.state for n in through_the_balancer.notices][:1] == ["firing"], "the trap is real"
    for alert in await reader.alerts(active_only=True):
        await writer.resolve_alert(alert.id, T0)

    sink = Recording()
    engine = engine_of(AlertRules(), writer, Dispatcher([sink]), reader)
    for n in range(12):
        # Each round in the other order too: counters read as one stream would rise and fall.
        checks = [replica(key, n * 10.0, pool(refused)) for key, refused in pair]
        await rounds(engine, checks if n % 2 else checks[::-1])
    assert sink.notices == []
    assert await reader.alerts(active_only=True) == []


async def test_a_restart_is_a_fresh_window_not_a_spike(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    engine = engine_of(AlertRules(), writer, Dispatcher([sink]), reader)
    before = [
        [replica(A, t, pool(40), s3(5, 0)), replica(B, t, pool(2), s3(5, 0))] for t in (0, 10)
    ]
    await rounds(engine, *before)
    # Both restart: the same pod names, new processes (a container restart in Kubernetes). A's
    # counters are back to 0; B's first answer already counts refusals and failed calls made
    # before we saw it — compared with the old process (2 → 5 refused; 5 → 16 calls, 6 of them
    # failed) that would be an exhaustion and a 55 % S3 failure rate.
    restarted = STARTED + 3620.0
    after = [
        [
            replica(A, t, pool(0), s3(0, 0), started=restarted),
            replica(B, t, pool(5), s3(10, 6), started=restarted),
        ]
        for t in (20, 30)
    ]
    await rounds(engine, *after)
    assert sink.notices == [], "a new process's counters are not compared with the old one's"
    # The new process's own refusal does count.
    await rounds(
        engine,
        [
            replica(A, 40, pool(0), s3(0, 0), started=restarted),
            replica(B, 40, pool(6), s3(10, 6), started=restarted),
        ],
    )
    assert [(n.rule, n.state) for n in sink.notices] == [("db_pool_exhausted", "firing")]
    (alert,) = await reader.alerts(active_only=True)
    assert alert.summary == (
        "api/database: connection pool exhausted, 1 caller refused in the last 5 min "
        "on 1/2 replicas (web-6)"
    )


async def test_an_exhaustion_on_one_replica_of_three_fires_once_and_names_it(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    # Resolved at the first clear check (the replicas are the subject here, not the hold-down).
    engine = engine_of(AlertRules(window=60.0, hold_down=0.0), writer, Dispatcher([sink]), reader)

    def round_at(t: float, b_refused: int) -> list[ReplicaCheck]:
        return [replica(A, t, pool(0)), replica(B, t, pool(b_refused)), replica(C, t, pool(9))]

    await rounds(engine, round_at(0, 2), round_at(10, 2))
    assert sink.notices == []
    await rounds(engine, *[round_at(t, b) for t, b in ((20, 3), (30, 4), (40, 5))])
    assert [n.state for n in sink.notices] == ["firing"], "once, while callers are refused"
    (alert,) = await reader.alerts(active_only=True)
    assert (alert.rule, alert.service) == ("db_pool_exhausted", "database")
    assert alert.summary == (
        "api/database: connection pool exhausted, 3 callers refused in the last 1 min "
        "on 1/3 replicas (web-6)"
    )
    # Clear at the first round whose counter did not rise, though the rises are in the window.
    await rounds(engine, round_at(50, 5))
    assert [n.state for n in sink.notices] == ["firing", "resolved"]


async def test_a_breaker_open_on_two_replicas_of_three_names_both(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    engine = engine_of(AlertRules(hold_down=0.0), writer, Dispatcher([sink]), reader)

    def round_at(t: float, a: str, c: str) -> list[ReplicaCheck]:
        return [
            replica(A, t, pool(0, breaker=a)),
            replica(B, t, pool(0)),
            replica(C, t, pool(0, breaker=c), instance=None),  # an older backend: no instance
        ]

    await rounds(engine, *[round_at(t, "open", "closed") for t in range(0, 100, 10)])
    await rounds(engine, *[round_at(t, "open", "open") for t in range(100, 400, 10)])
    (first,) = sink.notices
    assert first.at == T0 + 300, "held 5 min on web-5 (the hold is per replica)"
    assert first.summary == (
        "api/database: circuit breaker open since 08:00:00 UTC on 1/3 replicas (web-5)"
    )
    await rounds(engine, round_at(400, "open", "open"))
    assert len(sink.notices) == 1

    # A fresh alert: both have held 5 min now, so both are named (C by its address).
    await rounds(engine, round_at(410, "closed", "closed"))
    await rounds(engine, *[round_at(t, "open", "open") for t in range(420, 730, 10)])
    assert [n.state for n in sink.notices] == ["firing", "resolved", "firing"]
    assert sink.notices[-1].summary == (
        f"api/database: circuit breaker open since 08:07:00 UTC on 2/3 replicas (web-5, {C})"
    )
    # It holds while any replica holds it.
    await rounds(engine, round_at(730, "closed", "half_open"))
    assert len(sink.notices) == 3
    await rounds(engine, round_at(740, "closed", "closed"))
    assert [n.state for n in sink.notices] == ["firing", "resolved", "firing", "resolved"]
    assert await reader.alerts(active_only=True) == []


async def test_a_summary_names_three_replicas_then_counts_the_rest(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    engine = engine_of(AlertRules(breaker_open_for=0.0), writer, Dispatcher([sink]), reader)
    hostile = "\x1b[31mweb-1\n" + "x" * 200  # from outside: neither its length nor its bytes
    keys = [f"10.0.0.{n}:8000" for n in range(1, 6)]
    names = [hostile, "web-2", "web-3", "web-4", "web-5"]
    await rounds(
        engine,
        [
            replica(k, 0, pool(0, breaker="open"), instance=n)
            for k, n in zip(keys, names, strict=True)
        ],
    )
    (notice,) = sink.notices
    assert notice.summary == (
        "api/database: circuit breaker open since 08:00:00 UTC on 5/5 replicas "
        f"([31mweb-1{'x' * 51}, web-2, web-3 +2 more)"
    )


async def test_unreachable_on_one_replica_of_three(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    engine = engine_of(AlertRules(hold_down=0.0), writer, Dispatcher([sink]), reader)
    healthy = [replica(A, 0, pool(0)), replica(B, 0, pool(0))]
    await rounds(engine, [*healthy, replica(C, 0, pool(0))])
    down = [
        [replica(A, t, pool(0)), replica(B, t, pool(0)), unreachable(C, t)]
        for t in range(10, 80, 10)
    ]
    assert aggregate(10, down[0]).status is Status.DEGRADED, "the target as a whole answers"
    # One replica of three away (a restart, a rolling deploy) while the others serve: not paged
    # within open_after (2) checks, as the whole target down is, but after unreachable_for (60 s).
    await rounds(engine, *down[:6])
    assert sink.notices == [], "down for 50 s: the soak's replica restart (7 s) paged here before"
    await rounds(engine, down[6])
    (alert,) = await reader.alerts(active_only=True)
    assert (alert.rule, alert.service, alert.started_at) == ("target_unreachable", "", T0 + 70)
    assert alert.summary == (
        "api: health API not answering since 08:00:10 UTC (timeout) on 1/3 replicas (10.0.0.7:8000)"
    )
    await rounds(
        engine, [replica(A, 80, pool(0)), replica(B, 80, pool(0)), replica(C, 80, pool(0))]
    )
    assert [n.state for n in sink.notices] == ["firing", "resolved"]


async def test_a_replica_leaving_the_set_is_forgotten(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    engine = engine_of(
        AlertRules(window=60.0, breaker_open_for=30.0, hold_down=0.0),
        writer,
        Dispatcher([sink]),
        reader,
    )
    await rounds(
        engine,
        *[
            [replica(A, t, pool(0)), replica(B, t, pool(0)), replica(C, t, pool(0, breaker="open"))]
            for t in range(0, 40, 10)
        ],
    )
    assert [n.state for n in sink.notices] == ["firing"]
    # C leaves the DNS answer (retired, not down): its alert holds on no replica any more.
    await rounds(engine, [replica(A, 40, pool(0)), replica(B, 40, pool(0))])
    assert [n.state for n in sink.notices] == ["firing", "resolved"]
    assert engine.tracked("api") == [A, B, C], "kept for the window, in case it comes back"
    # Back after 20 s, still open: its hold starts again (it was not watched meanwhile).
    back = [
        [replica(A, t, pool(0)), replica(B, t, pool(0)), replica(C, t, pool(0, breaker="open"))]
        for t in (60, 70, 80)
    ]
    await rounds(engine, *back)
    assert len(sink.notices) == 2, "open for 20 s since it came back"

    # A set churning through addresses: memory stays bounded by the window.
    for n in range(200):
        t = 100.0 + 10 * n
        await engine.observe(
            CheckRecord("api", T0 + t, Status.HEALTHY, 1.0, 200, None, ()),
            [replica(A, t, pool(0)), replica(f"10.1.{n // 250}.{n % 250}:8000", t, pool(n))],
        )
    tracked = engine.tracked("api")
    assert len(tracked) <= 8, tracked  # A and the addresses of the last 60 s
    assert B not in tracked and C not in tracked
    await settle()
    assert len(sink.notices) == 2
    assert await reader.alerts(active_only=True) == []
