"""The seed's alert rules on synthetic checks with explicit timestamps (no waiting for 5 minutes),
and the notifiers: a dead webhook receiver cannot stall anything."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.alerts import AlertEngine
from monitor.config import AlertRules, IncidentRules, MonitorConfig, Target
from monitor.notifiers import AlertNotice, Dispatcher, LogSink, WebhookSink
from monitor.store import (
    Alert,
    CheckRecord,
    HistoryRead,
    HistoryReader,
    HistoryWrite,
    Instance,
    LeaseLost,
    ReplicaCheck,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from shared.resilience.testing import FakeClock, settle, waits_disabled

T0 = 1_800_000_000.0


class Recording:
    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    async def send(self, notice: AlertNotice) -> None:
        self.notices.append(notice)


def engine_of(
    rules: AlertRules,
    writer: HistoryWrite,
    dispatcher: Dispatcher,
    reader: HistoryRead,
    *,
    open_after: int = 2,
    targets: tuple[Target, ...] = (),
) -> AlertEngine:
    """An engine as the daemon makes one: from a config with these rules and targets."""
    config = MonitorConfig(
        Path("monitor.toml"),
        targets=targets,
        incidents=IncidentRules(open_after=open_after),
        alerts=rules,
    )
    return AlertEngine(config, writer, dispatcher, reader)


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


def sample(service: str, status: Status = Status.HEALTHY, **details: object) -> ServiceSample:
    breaker = details.pop("breaker", "closed")
    failures = details.pop("failures", 0)
    return ServiceSample(
        service,
        status,
        5.0,
        consecutive_failures=int(str(failures)),
        breaker_state=str(breaker),
        details=dict(details),
    )


def record(at: float, *services: ServiceSample, status: Status = Status.HEALTHY) -> CheckRecord:
    return CheckRecord("api", T0 + at, status, 10.0, 200, None, services)


async def run(engine: AlertEngine, checks: list[CheckRecord]) -> None:
    for check in checks:
        await engine.observe(check)
    await settle()


async def test_breaker_open_fires_after_five_minutes_and_resolves_when_closed(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    sink = Recording()
    engine = engine_of(AlertRules(), writer, Dispatcher([sink]), reader)
    opened = [
        # Degraded, not failing its health checks: a failure-rate alert on the component would
        # be its one page (one cause, one page), and this test is about the breaker.
        record(t, sample("database", Status.DEGRADED, breaker="open"))
        for t in range(0, 300, 10)
    ]
    await run(engine, opened)
    assert await breaker_alerts(reader) == [], "open for 290 s only"
    # After its recovery timeout the breaker reads half_open between trials: still not closed.
    await run(engine, [record(300, sample("database", Status.DEGRADED, breaker="half_open"))])
    (alert,) = await breaker_alerts(reader)
    assert alert.service == "database"
    assert [n.state for n in sink.notices if n.rule == "breaker_open"] == ["firing"]
    assert alert.summary == "api/database: circuit breaker half-open since 08:00:00 UTC"
    # Closed: clear, but resolved only once clear for the hold-down (30 s).
    await run(engine, [record(t, sample("database")) for t in (310, 320, 330)])
    assert len(await breaker_alerts(reader)) == 1, "clear for 20 s only"
    await run(engine, [record(340, sample("database"))])
    assert await breaker_alerts(reader) == []
    assert [n.state for n in sink.notices if n.rule == "breaker_open"] == ["firing", "resolved"]


async def breaker_alerts(reader: HistoryReader) -> list[Alert]:
    return [a for a in await reader.alerts() if a.rule == "breaker_open"]


async def test_health_check_failure_rate_over_the_window(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    engine = engine_of(AlertRules(window=60.0), writer, Dispatcher([]), reader)
    half = [
        record(
            t,
            sample(
                "s3", Status.UNHEALTHY if t % 20 else Status.HEALTHY, failures=1 if t % 20 else 0
            ),
        )
        for t in range(0, 60, 10)
    ]
    await run(engine, half)
    assert await reader.alerts() == [], "50 % is not more than 50 %"
    await run(engine, [record(60, sample("s3", Status.UNHEALTHY, failures=2))])
    (alert,) = await reader.alerts()
    assert alert.rule == "health_check_failure_rate"
    assert alert.summary == "api/s3: 4 of the last 7 health checks failed"


async def test_pool_exhaustion_fires_on_a_rise_of_the_counter_only(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    engine = engine_of(AlertRules(window=60.0), writer, Dispatcher([]), reader)
    await run(engine, [record(0, sample("database", details={"exhausted_total": 40}))])
    assert await reader.alerts() == [], "refusals from before we watched do not count"
    await run(engine, [record(10, sample("database", details={"exhausted_total": 41}))])
    (alert,) = await reader.alerts()
    assert alert.rule == "db_pool_exhausted"
    assert (
        alert.summary
        == "api/database: connection pool exhausted, 1 caller refused in the last 1 min"
    )
    # Clear from the first check whose counter did not rise (20), though the rise stays in the
    # window until 70: resolved after the hold-down (30 s), at 50, not at 100.
    await run(
        engine,
        [record(t, sample("database", details={"exhausted_total": 41})) for t in range(20, 50, 10)],
    )
    assert len(await reader.alerts()) == 1
    await run(engine, [record(50, sample("database", details={"exhausted_total": 41}))])
    assert await reader.alerts() == []


async def test_pool_exhaustion_holds_while_refusals_go_on(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    """Refusals at every check keep the alert up (and its figure follows them)."""
    writer, reader = store
    engine = engine_of(AlertRules(window=60.0), writer, Dispatcher([]), reader)
    await run(
        engine,
        [
            record(t, sample("database", details={"exhausted_total": 40 + t // 10}))
            for t in range(0, 130, 10)
        ],
    )
    (alert,) = await reader.alerts(active_only=True)
    assert alert.summary == (
        "api/database: connection pool exhausted, 6 callers refused in the last 1 min"
    )


async def test_s3_failure_rate_from_the_breaker_counters(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    engine = engine_of(AlertRules(window=120.0), writer, Dispatcher([]), reader)

    def s3(successes: int, failures: int, rejected: int) -> ServiceSample:
        return sample(
            "s3",
            circuit_breaker={
                "successful_calls": successes,
                "failed_calls": failures,
                "rejected_calls": rejected,
            },
        )

    await run(engine, [record(0, s3(100, 0, 0)), record(10, s3(107, 3, 0))])
    assert await reader.alerts() == [], "3 of 10 is 30 %, not more"
    await run(engine, [record(20, s3(107, 3, 2))])
    (alert,) = await reader.alerts()
    assert (alert.rule, alert.summary) == (
        "s3_failure_rate",
        "api/s3: 42% of S3 operations failing over the last 2 min",
    )


async def test_a_counter_that_falls_was_reset_and_only_rises_after_it_count(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    """A restart the backend did not name (an older backend, no ``instance``): its counter falls
    to 0. That is no refusal, and a refusal of the new process is one, though it is below the
    window's first figure."""
    writer, reader = store
    engine = engine_of(AlertRules(window=60.0), writer, Dispatcher([]), reader)
    await run(
        engine, [record(t, sample("database", details={"exhausted_total": 40})) for t in (0, 10)]
    )
    await run(engine, [record(20, sample("database", details={"exhausted_total": 0}))])
    assert await reader.alerts() == []
    await run(engine, [record(30, sample("database", details={"exhausted_total": 1}))])
    (alert,) = await reader.alerts()
    assert alert.rule == "db_pool_exhausted"


async def test_one_replica_named_is_the_target_as_before(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    """A target without ``replicas`` is one replica, at its url: its summaries say nothing of
    replicas."""
    writer, reader = store
    engine = engine_of(AlertRules(window=60.0), writer, Dispatcher([]), reader)
    for t, refused in ((0, 40), (10, 41)):
        check = record(t, sample("database", details={"exhausted_total": refused}))
        await engine.observe(check, [ReplicaCheck("127.0.0.1:8000", check, Instance("w", T0))])
    (alert,) = await reader.alerts()
    assert (
        alert.summary
        == "api/database: connection pool exhausted, 1 caller refused in the last 1 min"
    )


class Lease:
    """The fence of a monitor that may lose its lease: refuses every write while lost."""

    def __init__(self) -> None:
        self.lost = False

    async def __call__(self, connection: AsyncConnection) -> None:
        if self.lost:
            raise LeaseLost()


async def test_a_lost_lease_stops_a_transition_whole_and_a_later_check_retries_it(
    tmp_path: Path,
) -> None:
    engine_ = open_engine(f"sqlite:///{tmp_path}/fenced.db")
    await create_schema(engine_)
    lease = Lease()
    writer, reader = HistoryWriter(engine_, fence=lease), HistoryReader(engine_)
    sink = Recording()
    dispatcher = Dispatcher([sink])
    # Resolved at the first clear check: the fence is the subject here, not the hold-down.
    engine = engine_of(AlertRules(window=60.0, hold_down=0.0), writer, dispatcher, reader)
    pool = [record(t, sample("database", details={"exhausted_total": 40 + t})) for t in (0, 10, 20)]
    try:
        await run(engine, pool[:1])
        lease.lost = True
        with pytest.raises(LeaseLost):
            await engine.observe(pool[1])
        await dispatcher.drain()
        assert sink.notices == [], "nobody paged for what the store did not take"
        assert engine.firing == {}
        assert await reader.alerts() == []

        lease.lost = False  # (a monitor leading again; the daemon would be a fresh one)
        await run(engine, pool[2:])
        assert [(n.rule, n.state) for n in sink.notices] == [("db_pool_exhausted", "firing")]
        assert len(await reader.alerts(active_only=True)) == 1

        calm = [record(t, sample("database", details={"exhausted_total": 60})) for t in (90, 100)]
        lease.lost = True
        with pytest.raises(LeaseLost):
            await engine.observe(calm[0])
        await dispatcher.drain()
        assert list(engine.firing) == [("db_pool_exhausted", "api", "database")], "not resolved"
        assert len(sink.notices) == 1
        lease.lost = False
        await run(engine, calm[1:])
        assert [n.state for n in sink.notices] == ["firing", "resolved"]
        assert await reader.alerts(active_only=True) == []
    finally:
        await engine_.dispose()


async def test_a_new_leader_resumes_a_firing_alert_without_announcing_it_again(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    first, second = Recording(), Recording()
    opened = [record(t, sample("database", breaker="open")) for t in range(0, 310, 10)]
    leader = Dispatcher([first])
    await run(engine_of(AlertRules(), writer, leader, reader), opened)
    await leader.drain()  # delivered, and so marked in the store's outbox
    assert [n.state for n in first.notices] == ["firing"]
    successor = engine_of(AlertRules(), writer, Dispatcher([second]), reader)
    await successor.resume(reader, at=T0 + 315)
    await run(successor, [record(t, sample("database", breaker="open")) for t in (320, 330)])
    assert second.notices == []
    await run(successor, [record(t, sample("database")) for t in (340, 350, 360)])
    assert second.notices == [], "clear for 20 s of the 30 s hold-down"
    await run(successor, [record(370, sample("database"))])
    assert [n.state for n in second.notices] == ["resolved"]
    assert second.notices[0].summary == "api/database: circuit breaker open since 08:00:00 UTC"


async def test_a_dead_webhook_receiver_does_not_stall_checks() -> None:
    clock = FakeClock()
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        sink = WebhookSink("http://hooks.test/alert", client, timeout=1.0, clock=clock)
        dispatcher = Dispatcher([sink])
        notice = AlertNotice("target_unreachable", "api", "", "firing", "down", T0)
        with waits_disabled():
            dispatcher.dispatch(notice)  # returns at once: sending happens in the background
            await dispatcher.drain()
            assert attempts == 3, "retried through the policy library"
            for _ in range(3):
                dispatcher.dispatch(notice)
            await dispatcher.drain()
            assert clock.sleeps == [0.0, 0.0], "no waiting on the refused notices"
    assert attempts == 3, "the breaker opened after three failures and refused the rest"


async def test_a_webhook_gets_the_notice_as_json() -> None:
    received: list[dict[str, object]] = []
    keys: list[str | None] = []

    async def accept(request: httpx.Request) -> httpx.Response:
        import json

        received.append(json.loads(request.content))
        keys.append(request.headers.get("Idempotency-Key"))
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(accept)) as client:
        dispatcher = Dispatcher([WebhookSink("http://hooks.test/alert", client, timeout=1.0)])
        notice = AlertNotice(
            "breaker_open",
            "api",
            "database",
            "firing",
            "x",
            T0,
            alert_id=7,
            component="api/database",
            name="QuestCity API / Database",
        )
        dispatcher.dispatch(notice)
        await asyncio.wait_for(dispatcher.drain(), timeout=5.0)
    assert keys == ["7:firing"], "the idempotency key, for a receiver to drop a duplicate"
    assert received == [
        {
            "id": "7:firing",
            "rule": "breaker_open",
            "target": "api",
            "service": "database",
            "state": "firing",
            "component": "api/database",
            "name": "QuestCity API / Database",
            "reminder": 0,
            "summary": "x",
            "at": T0,
        }
    ]


async def test_the_log_notifier_logs_a_notice_with_its_display_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``name`` is a LogRecord attribute: passed as is in ``extra``, logging refused every
    notice of the default notifier (KeyError)."""
    notice = AlertNotice(
        "service_down", "api", "database", "firing", "down", T0, 3, "api/database", "API / DB"
    )
    with caplog.at_level(logging.INFO, logger="monitor.alerts"):
        await LogSink().send(notice)
    (line,) = [r for r in caplog.records if getattr(r, "event", "") == "alert"]
    assert (line.getMessage(), getattr(line, "display_name", None)) == (
        "alert firing: down",
        "API / DB",
    )
    assert getattr(line, "component", None) == "api/database"
