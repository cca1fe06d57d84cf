"""Maintenance windows hold alerts and automatic incidents (issue #15), on the real SQLite store
and the check clock (every check carries its own timestamp; nothing here waits): an alert in a
window is recorded but not sent, and the window says it held it; the window's end sends what
still fires; a cause down through a window opens its incident at the window's end (or its
cancellation), at once, and the window names it; the leader marks windows started and completed,
once however many monitors look."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.alerting.quiet import Quiet
from monitor.alerts import AlertEngine
from monitor.config import AlertRules, IncidentRules, MonitorConfig
from monitor.incidents import IncidentTracker
from monitor.maintenance_watch import MaintenanceWatch
from monitor.store import (
    HistoryReader,
    IncidentState,
    MaintenanceEvent,
    StoreError,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from tests.monitor.store.support import migrated_store_url
from tests.monitor.test_alert_lifecycle import (
    API,
    T0,
    Recording,
    Store,
    active,
    check,
    database,
    engine,
    run,
)
from tests.monitor.test_alerts import store
from tests.monitor.test_daemon_signals import Stack, stack

__all__ = ["stack", "store"]


async def window(store: Store, components: list[str], starts: float, ends: float) -> int:
    return await store[0].schedule_maintenance(
        "Database upgrade", components, T0 + starts, T0 + ends, None, "alice", T0 - 3600
    )


async def events(store: Store, window_id: int, kind: str | None = None) -> list[MaintenanceEvent]:
    found = await store[1].maintenance(window_id)
    assert found is not None
    return [e for e in found.events if kind is None or e.kind == kind]


# -- alerts


async def test_an_alert_in_a_window_is_recorded_not_sent_and_sent_when_the_window_ends(
    store: Store,
) -> None:
    _writer, reader = store
    sink = Recording()
    alerts = engine(store, sink, AlertRules())
    held = await window(store, ["api/database"], 0, 45)
    await run(alerts, check(0, database(False)), check(10, database(False)))
    (alert,) = await active(store, "service_down")
    assert sink.notices == [], "recorded, not sent"
    assert await reader.unnotified_alerts() == [], "handled: a successor sends none either"
    await run(alerts, check(20, database(False)), check(40, database(False)))
    assert sink.notices == []
    (event,) = await events(store, held, "held_alert")
    assert event.at == T0 + 10
    assert "service_down on api/database" in event.text
    await run(alerts, check(50, database(False)))  # the window ended at 45, still down
    (notice,) = sink.notices
    assert (notice.state, notice.alert_id) == ("firing", alert.id)
    await run(alerts, *[check(t, database(True)) for t in range(60, 100, 10)])
    assert sink.states() == ["firing", "resolved"]
    assert len(await events(store, held, "held_alert")) == 1, "once per alert and window"


async def test_a_window_on_the_target_holds_its_services_alerts(store: Store) -> None:
    _writer, reader = store
    sink = Recording()
    alerts = engine(store, sink, AlertRules(hold_down=0.0))
    held = await window(store, ["api"], 0, 3600)
    await run(alerts, *[check(t, database(False)) for t in (0, 10, 20)])
    assert await active(store, "service_down") != []
    await run(alerts, check(30, database(True)))
    assert sink.notices == [], "fired and resolved within the window: nobody paged"
    assert await active(store, "service_down") == []
    assert await reader.unnotified_alerts() == []
    (event,) = await events(store, held, "held_alert")
    assert "api/database" in event.text


async def test_the_monitor_s_own_alerts_are_never_held_by_a_window(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules())
    # The monitor's own component (as a silence may name it), and the target it is about.
    held = await window(store, ["@monitor", "api"], 0, 3600)
    await run(alerts, check(0, database(False)), check(10, database(False)))
    await alerts.report("monitor_checks_missed", "@monitor", "api", "api missed 3 runs", T0 + 15)
    await run(alerts)
    assert sink.states("service_down") == [], "the target's alert is held"
    assert sink.states("monitor_checks_missed") == ["firing"], "never planned work"
    (event,) = await events(store, held, "held_alert")
    assert "service_down" in event.text


async def test_a_held_record_the_store_refuses_is_logged_and_the_alert_goes_on(
    store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, _ = store
    sink = Recording()
    alerts = engine(store, sink, AlertRules())
    await window(store, ["api/database"], 0, 45)

    async def refused(maintenance_id: int, event: MaintenanceEvent) -> None:
        raise StoreError("down")

    monkeypatch.setattr(writer, "add_maintenance_event", refused)
    with caplog.at_level(logging.WARNING, logger="monitor.alerts"):
        await run(alerts, check(0, database(False)), check(10, database(False)))
    unwritten = "maintenance_event_unwritten"
    (line,) = [r for r in caplog.records if r.__dict__.get("event") == unwritten]
    assert "service_down on api/database" in line.getMessage()
    assert sink.notices == []
    await run(alerts, check(50, database(False)))
    assert sink.states() == ["firing"]


# -- incidents


def tracker(store: Store, **rules: int) -> tuple[IncidentTracker, AlertEngine]:
    """The tracker as the daemon makes it: sharing the engine's read of the windows."""
    writer, reader = store
    config = MonitorConfig(
        Path("monitor.toml"),
        targets=(API,),
        incidents=IncidentRules(open_after=2, resolve_after=2, **rules),
        alerts=AlertRules(),
    )
    alerts = engine(store, Recording(), AlertRules())
    return IncidentTracker(config, writer, reader=reader, quiet=alerts.quiet), alerts


async def watch(incidents: IncidentTracker, *at_down: tuple[float, bool]) -> None:
    for at, down in at_down:
        await incidents.observe(check(at, database(not down)))


async def test_a_window_holds_an_incident_and_its_end_opens_it_at_once(store: Store) -> None:
    _writer, reader = store
    incidents, _ = tracker(store)
    held = await window(store, ["api/database"], 0, 100)
    await watch(incidents, *[(t, True) for t in range(0, 100, 10)])
    assert incidents.open_causes() == {}
    assert await reader.incidents(state=IncidentState.OPEN) == []
    (event,) = await events(store, held, "held_incident")
    assert "api/database" in event.text
    await watch(incidents, (100, True))  # the first check after the window: still down
    ((cause, number),) = incidents.open_causes().items()
    assert cause == ("api", "database")
    opened = await reader.incident(number)
    assert opened is not None and opened.opened_at == T0 + 100, "at once, not 2 checks later"
    (event,) = await events(store, held, "incident_opened")
    assert f"#{number}" in event.text
    assert len(await events(store, held, "held_incident")) == 1, "once per cause and window"


async def test_a_successor_opens_the_incident_a_window_held_before_it_led(store: Store) -> None:
    _, reader = store
    first, _ = tracker(store)
    held = await window(store, ["api/database"], 0, 100)
    await watch(first, *[(t, True) for t in range(0, 90, 10)])
    successor, _ = tracker(store)  # the leader changed late in the window: one check in it
    await successor.resume(reader)
    await watch(successor, (90, True), (100, True))
    (number,) = successor.open_causes().values()
    (event,) = await events(store, held, "incident_opened")
    assert f"#{number}" in event.text
    assert event.at == T0 + 100


async def test_a_cause_that_recovered_in_its_window_opens_nothing(store: Store) -> None:
    _writer, reader = store
    incidents, _ = tracker(store)
    held = await window(store, ["api"], 0, 100)
    await watch(incidents, *[(t, True) for t in range(0, 60, 10)])
    await watch(incidents, *[(t, False) for t in range(60, 140, 10)])
    assert incidents.open_causes() == {}
    assert await reader.incidents() == []
    assert await events(store, held, "incident_opened") == []
    assert len(await events(store, held, "held_incident")) == 1


async def test_cancelling_the_window_ends_the_hold(store: Store) -> None:
    writer, _reader = store
    incidents, _ = tracker(store)
    held = await window(store, ["api/database"], 0, 3600)
    await watch(incidents, *[(t, True) for t in range(0, 40, 10)])
    assert incidents.open_causes() == {}
    await writer.cancel_maintenance(held, "alice", T0 + 41)
    await watch(incidents, (50, True))  # the next read of the windows (5 s on) finds it gone
    assert list(incidents.open_causes()) == [("api", "database")]
    assert len(await events(store, held, "incident_opened")) == 1


async def test_an_incident_open_before_the_window_goes_on(store: Store) -> None:
    _writer, reader = store
    incidents, _ = tracker(store)
    await watch(incidents, (0, True), (10, True))
    (number,) = incidents.open_causes().values()
    await window(store, ["api"], 15, 3600)
    await watch(incidents, (20, True), (30, False), (40, False))
    assert incidents.open_causes() == {}, "resolved as usual: the window did not hide it"
    resolved = await reader.incident(number)
    assert resolved is not None and resolved.state is IncidentState.RESOLVED


# -- the leader's marks


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_store_url(request.param, request, tmp_path)


@pytest.fixture
async def either(url: str) -> AsyncIterator[Store]:
    """The store on SQLite and on PostgreSQL (where two monitors' marks truly race)."""
    engine = open_engine(url)
    await create_schema(engine)
    yield HistoryWriter(engine), HistoryReader(engine)
    await engine.dispose()


async def test_windows_are_marked_started_and_completed_once_by_two_watchers(
    either: Store,
) -> None:
    writer, reader = either
    one, other = Quiet(reader), Quiet(reader)
    watchers = [MaintenanceWatch(one, writer), MaintenanceWatch(other, writer)]
    marked = await window(either, ["api"], 10, 60)
    cancelled = await window(either, ["api/database"], 10, 60)
    await writer.cancel_maintenance(cancelled, "alice", T0)
    made: list[tuple[int, str]] = []
    for t in range(0, 100, 5):
        # Both read the windows before either marks: both see them due, at the same time.
        await one.refresh(T0 + t)
        await other.refresh(T0 + t)
        for marks in await asyncio.gather(*(w.look(T0 + t) for w in watchers)):
            made += marks
    assert made == [(marked, "started"), (marked, "completed")]
    found = await reader.maintenance(marked)
    assert found is not None
    assert (found.started_at, found.completed_at) == (T0 + 10, T0 + 60)
    assert [e.kind for e in found.events] == ["started", "completed"]
    gone = await reader.maintenance(cancelled)
    assert gone is not None and (gone.started_at, gone.completed_at) == (None, None)


# -- the daemon


async def test_the_daemon_marks_its_windows_and_opens_the_held_incident_at_the_end(
    stack: Stack,
) -> None:
    writer, reader = stack.daemon.writer, stack.daemon.reader
    held = await writer.schedule_maintenance(
        "Database upgrade", ["questcity-api"], T0 + 5, T0 + 45, None, "alice", T0 - 60
    )
    stack.answer(database="unhealthy", critical=True)
    await stack.check(5)  # T0 … T0+40: held throughout
    assert await reader.incidents() == []
    await stack.check()  # T0+50: the window is over, the database still down
    (opened,) = await reader.incidents()
    assert (opened.service, opened.opened_at) == ("database", T0 + 50)
    window = await reader.maintenance(held)
    assert window is not None
    assert (window.started_at, window.completed_at) == (T0 + 10, T0 + 50)
    assert [e.kind for e in window.events if e.kind != "held_alert"] == [
        "started",
        "held_incident",
        "completed",
        "incident_opened",
    ]
