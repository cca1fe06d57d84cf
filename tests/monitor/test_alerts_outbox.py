"""The alerts' outbox: a notice is never lost to a leader's death, on a real store (SQLite and
PostgreSQL).

A leader "dies" here by having its dispatcher cut short (the sends in flight cancelled, as a
kill -9 would end them): nothing after that runs, so nothing is marked. A successor resumed from
the store sends what is owed once and marks it; a notice already marked is not sent again."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.alerts import AlertEngine
from monitor.config import AlertRules, Target
from monitor.notifiers import AlertNotice, Dispatcher, WebhookSink
from monitor.store import (
    AlertState,
    CheckRecord,
    HistoryReader,
    LeaseLost,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from shared.resilience.testing import FakeClock, settle
from tests.monitor.store.support import migrated_store_url
from tests.monitor.test_alerts import engine_of
from tests.support.polling import eventually

T0 = 1_800_000_000.0
OPEN_FOR = 30.0
RULES = AlertRules(breaker_open_for=OPEN_FOR, hold_down=0.0)
"""Resolved at the first clear check: the outbox is the subject here, not the hold-down."""


class Recording:
    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    async def send(self, notice: AlertNotice) -> None:
        self.notices.append(notice)


class Stuck:
    """A receiver that never answers until let go: the notice is in flight."""

    def __init__(self) -> None:
        self.started: list[AlertNotice] = []
        self.go = asyncio.Event()

    async def send(self, notice: AlertNotice) -> None:
        self.started.append(notice)
        await self.go.wait()


class Only:
    """Passes notices of one state to ``sink``; takes the others at once."""

    def __init__(self, state: str, sink: Stuck) -> None:
        self.state = state
        self.sink = sink

    async def send(self, notice: AlertNotice) -> None:
        if notice.state == self.state:
            await self.sink.send(notice)


class Lease:
    """A fence that a test can take away."""

    def __init__(self) -> None:
        self.lost = False

    async def __call__(self, connection: AsyncConnection) -> None:
        if self.lost:
            raise LeaseLost()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # A copy of the session's migrated store (create_schema below finds it at head).
    yield from migrated_store_url(request.param, request, tmp_path)


@pytest.fixture
async def store(url: str) -> AsyncIterator[tuple[HistoryWriter, HistoryReader]]:
    engine = open_engine(url)
    await create_schema(engine)
    yield HistoryWriter(engine), HistoryReader(engine)
    await engine.dispose()


def check(at: float, breaker: str) -> CheckRecord:
    sample = ServiceSample("database", Status.HEALTHY, 5.0, breaker_state=breaker)
    return CheckRecord("api", T0 + at, Status.HEALTHY, 10.0, 200, None, (sample,))


async def fire(engine: AlertEngine) -> None:
    for at in (0.0, OPEN_FOR):
        await engine.observe(check(at, "open"))


async def die(dispatcher: Dispatcher) -> None:
    """The leader is gone: what it was sending is cut short, and nothing after runs."""
    await dispatcher.drain(grace=0.0)


async def test_a_notice_in_flight_when_the_leader_dies_is_sent_by_the_next_once(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    stuck = Stuck()
    leader = Dispatcher([stuck])
    await fire(engine_of(RULES, writer, leader, reader))
    await settle()
    assert [n.state for n in stuck.started] == ["firing"]
    await die(leader)
    [owed] = await reader.unnotified_alerts()
    assert owed.state is AlertState.FIRING and owed.notified is None

    sink = Recording()
    dispatcher = Dispatcher([sink])
    successor = engine_of(RULES, writer, dispatcher, reader)
    await successor.resume(reader, at=T0 + OPEN_FOR + 5)
    await dispatcher.drain()
    assert [(n.rule, n.state, n.alert_id) for n in sink.notices] == [
        ("breaker_open", "firing", owed.id)
    ]
    assert sink.notices[0].summary == owed.summary
    assert await reader.unnotified_alerts() == []
    [alert] = await reader.alerts()
    assert alert.notified is AlertState.FIRING
    # Still firing on the successor (not fired again), and no second notice.
    await successor.observe(check(OPEN_FOR + 10, "open"))
    await dispatcher.drain()
    assert len(sink.notices) == 1
    assert len(await reader.alerts(active_only=False)) == 1


async def test_a_delivered_and_marked_notice_is_not_sent_again_on_resume(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    first = Recording()
    leader = Dispatcher([first])
    await fire(engine_of(RULES, writer, leader, reader))
    await leader.drain()
    assert [n.state for n in first.notices] == ["firing"]
    assert await reader.unnotified_alerts() == []

    second = Recording()
    dispatcher = Dispatcher([second])
    await engine_of(RULES, writer, dispatcher, reader).resume(reader, at=T0 + OPEN_FOR + 5)
    await dispatcher.drain()
    assert second.notices == []


async def test_a_resolved_notice_never_sent_is_sent_on_resume(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    stuck = Stuck()
    stuck.go.set()  # the firing notice goes through
    leader = Dispatcher([stuck])
    engine = engine_of(RULES, writer, leader, reader)
    await fire(engine)
    await leader.drain()
    stuck.go.clear()  # and the resolved one is still in flight when the leader dies
    await engine.observe(check(OPEN_FOR + 10, "closed"))
    await settle()
    assert [n.state for n in stuck.started] == ["firing", "resolved"]
    await die(leader)

    sink = Recording()
    dispatcher = Dispatcher([sink])
    successor = engine_of(RULES, writer, dispatcher, reader)
    await successor.resume(reader, at=T0 + OPEN_FOR + 5)
    await dispatcher.drain()
    assert [(n.state, n.at) for n in sink.notices] == [("resolved", T0 + OPEN_FOR + 10)]
    assert successor.firing == {}
    [alert] = await reader.alerts(active_only=False)
    assert (alert.state, alert.notified) == (AlertState.RESOLVED, AlertState.RESOLVED)


async def test_a_firing_notice_done_after_the_resolved_one_does_not_undo_its_mark(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    slow = Stuck()  # the firing notice hangs at a slow receiver ...
    dispatcher = Dispatcher([Only("firing", slow)])
    engine = engine_of(RULES, writer, dispatcher, reader)
    await fire(engine)
    await settle()
    await engine.observe(check(OPEN_FOR + 10, "closed"))
    await settle()

    async def resolved_marked() -> bool:  # ... while the resolved one is handled and marked
        return await reader.unnotified_alerts() == []

    await eventually(resolved_marked, "the resolved notice marked", within=5.0, every=0.01)
    slow.go.set()  # then the firing one is done, late: its mark must not stand for "resolved"
    await dispatcher.drain()
    assert [n.state for n in slow.started] == ["firing"]
    [alert] = await reader.alerts(active_only=False)
    assert (alert.state, alert.notified) == (AlertState.RESOLVED, AlertState.RESOLVED)
    assert await reader.unnotified_alerts() == []


async def test_a_deposed_leader_cannot_mark_and_does_not_crash(
    store: tuple[HistoryWriter, HistoryReader], caplog: pytest.LogCaptureFixture
) -> None:
    writer, reader = store
    lease = Lease()
    fenced = HistoryWriter(writer.engine, fence=lease)
    stuck = Stuck()
    leader = Dispatcher([stuck])
    await fire(engine_of(RULES, fenced, leader, reader))
    await settle()
    lease.lost = True  # deposed while the webhook is in flight
    stuck.go.set()
    with caplog.at_level(logging.INFO, logger="monitor.alerts"):
        await leader.drain()
    assert [n.state for n in stuck.started] == ["firing"]
    unmarked = [r for r in caplog.records if getattr(r, "event", "") == "notify_unmarked"]
    assert [getattr(r, "cause", "") for r in unmarked] == ["LeaseLost"]
    assert not [r for r in caplog.records if getattr(r, "event", "") == "notify_mark_failed"]
    [owed] = await reader.unnotified_alerts()
    assert owed.notified is None

    # The new leader sends it again (at least once): the receiver drops it by its key.
    sink = Recording()
    dispatcher = Dispatcher([sink])
    await engine_of(RULES, writer, dispatcher, reader).resume(reader, at=T0 + OPEN_FOR + 5)
    await dispatcher.drain()
    assert [n.key for n in sink.notices] == [stuck.started[0].key] == [f"{owed.id}:firing"]
    assert await reader.unnotified_alerts() == []


async def test_the_webhook_carries_the_idempotency_key_and_is_marked_after_its_retries(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    clock = FakeClock(autojump=True)
    received: list[tuple[dict[str, object], str | None]] = []

    async def flaky(request: httpx.Request) -> httpx.Response:
        received.append((json.loads(request.content), request.headers.get("Idempotency-Key")))
        return httpx.Response(503 if len(received) < 3 else 204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(flaky)) as client:
        webhook = WebhookSink("http://hooks.test/alert", client, timeout=1.0, clock=clock)
        dispatcher = Dispatcher([webhook])
        api = Target(
            "api",
            "http://api.test",
            display_name="QuestCity API",
            services={"database": "Quests and accounts"},
        )
        await fire(engine_of(RULES, writer, dispatcher, reader, targets=(api,)))
        await asyncio.wait_for(dispatcher.drain(), timeout=5.0)

    [alert] = await reader.alerts()
    key = f"{alert.id}:firing"
    assert [(body["id"], header) for body, header in received] == [(key, key)] * 3
    assert received[-1][0] == {
        "id": key,
        "rule": "breaker_open",
        "target": "api",
        "service": "database",
        "state": "firing",
        "component": "api/database",
        "name": "QuestCity API / Quests and accounts",
        "reminder": 0,
        "summary": alert.summary,
        "at": T0 + OPEN_FOR,
    }
    assert len([s for s in clock.sleeps if s > 0]) == 2, "two waits between three attempts"
    assert alert.notified is AlertState.FIRING, "marked once the receiver took it"


async def test_a_notice_given_up_after_its_retries_is_marked_handled(
    store: tuple[HistoryWriter, HistoryReader],
) -> None:
    writer, reader = store
    attempts = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        clock = FakeClock(autojump=True)
        webhook = WebhookSink("http://hooks.test/alert", client, timeout=1.0, clock=clock)
        dispatcher = Dispatcher([webhook])
        await fire(engine_of(RULES, writer, dispatcher, reader))
        await asyncio.wait_for(dispatcher.drain(), timeout=5.0)
    assert attempts == 3
    assert await reader.unnotified_alerts() == [], "given up: not re-sent by every restart"
