"""Maintenance windows across a change of leader (issue #15), on the real SQLite store and the
check clock: a window that ended hours before the next leader came is still marked completed;
a successor does not write again the held alert or held incident its predecessor recorded; a
notice that cannot be stored is held by a window as a stored alert's is."""

from __future__ import annotations

from monitor.alerting.quiet import Quiet
from monitor.config import AlertRules
from monitor.maintenance_watch import MaintenanceWatch
from tests.monitor.test_alert_lifecycle import (
    T0,
    Recording,
    Store,
    check,
    database,
    engine,
    run,
)
from tests.monitor.test_alerts import store
from tests.monitor.test_maintenance_hold import events, tracker, watch, window

__all__ = ["store"]

HOUR = 3600.0


async def test_a_window_that_ended_hours_ago_unmarked_is_marked_completed_at_the_next_look(
    store: Store,
) -> None:
    writer, reader = store
    gone = await window(store, ["api"], -4 * HOUR, -3 * HOUR)
    assert await writer.mark_maintenance(gone, "started", T0 - 4 * HOUR)
    never = await window(store, ["api"], -4 * HOUR, -3 * HOUR)  # nobody saw it: told nothing
    # The leader that said "started" died; the next one comes 3 h after the window's end.
    made = await MaintenanceWatch(Quiet(reader), writer).look(T0)
    assert made == [(gone, "completed")]
    found = await reader.maintenance(gone)
    assert found is not None and found.completed_at == T0
    assert [e.kind for e in found.events] == ["started", "completed"]
    untold = await reader.maintenance(never)
    assert untold is not None and untold.completed_at is None
    assert await MaintenanceWatch(Quiet(reader), writer).look(T0 + 10) == [], "once"


async def test_a_successor_does_not_record_the_held_alert_again(store: Store) -> None:
    _, reader = store
    held = await window(store, ["api/database"], 0, HOUR)
    first = engine(store, Recording(), AlertRules())
    await run(first, check(0, database(False)), check(10, database(False)))
    assert len(await events(store, held, "held_alert")) == 1
    sink = Recording()
    successor = engine(store, sink, AlertRules())  # the leader changed within the window
    await successor.resume(reader, at=T0 + 20)
    await run(successor, *[check(t, database(False)) for t in (20, 30, 40)])
    assert sink.notices == [], "still held"
    (event,) = await events(store, held, "held_alert")
    assert "service_down on api/database" in event.text and event.at == T0 + 10


async def test_a_successor_does_not_record_the_held_incident_again(store: Store) -> None:
    _, reader = store
    held = await window(store, ["api/database"], 0, 100)
    first, _ = tracker(store)
    await watch(first, *[(t, True) for t in range(0, 50, 10)])
    assert len(await events(store, held, "held_incident")) == 1
    successor, _ = tracker(store)
    await successor.resume(reader)
    await watch(successor, *[(t, True) for t in range(50, 110, 10)])
    (event,) = await events(store, held, "held_incident")
    assert "(api/database)" in event.text
    (number,) = successor.open_causes().values()
    (opened,) = await events(store, held, "incident_opened")
    assert f"#{number}" in opened.text, "the incident it held is still opened at the end"


async def test_a_notice_the_store_cannot_keep_is_held_by_a_window(store: Store) -> None:
    await window(store, ["api/database"], 0, HOUR)
    sink = Recording()
    alerts = engine(store, sink, AlertRules())
    await run(alerts, check(0, database(True)))  # the windows are read
    alerts.announce_unstored("service_down", "api", "database", "firing", "down", T0 + 5)
    assert sink.notices == [], "planned work pages nobody, stored or not"
    alerts.announce_unstored("monitor_store_unwritable", "@monitor", "", "firing", "x", T0 + 6)
    await run(alerts)
    assert sink.states() == ["firing"], "the monitor's own trouble is never planned work"
