"""A person who writes into an automatic incident takes it over (issue #15): from then on the
tracker neither resolves it nor writes public text into it, its cause's state changes go on as
internal events, and once the person resolves it a new fault opens a new incident. A restarted
tracker knows which incidents were taken over; a written incident is never the tracker's. On the
real SQLite store and the check clock."""

from __future__ import annotations

from pathlib import Path

from monitor.config import AlertRules, IncidentRules, MonitorConfig
from monitor.incidents import IncidentTracker
from monitor.store import Incident, IncidentComponent, IncidentState, Status
from tests.monitor.test_alert_lifecycle import API, T0, Store, check, database
from tests.monitor.test_alerts import store

__all__ = ["store"]


def tracker(store: Store) -> IncidentTracker:
    writer, reader = store
    config = MonitorConfig(
        Path("monitor.toml"),
        targets=(API,),
        incidents=IncidentRules(open_after=2, resolve_after=2),
        alerts=AlertRules(),
    )
    return IncidentTracker(config, writer, reader=reader)


async def watch(incidents: IncidentTracker, start: float, stop: float, *, down: bool) -> None:
    for at in range(int(start), int(stop), 10):
        await incidents.observe(check(at, database(not down)))


async def incident(store: Store, number: int) -> Incident:
    found = await store[1].incident(number)
    assert found is not None
    return found


async def test_a_taken_over_incident_is_the_person_s_until_they_resolve_it(store: Store) -> None:
    writer, _reader = store
    incidents = tracker(store)
    await watch(incidents, 0, 30, down=True)
    (number,) = incidents.open_causes().values()
    await writer.update_incident(number, "identified", "The database disk is full.", "bob", T0 + 25)
    public_before = [e for e in (await incident(store, number)).events if e.public]
    await watch(incidents, 30, 100, down=False)  # recovered for far longer than resolve_after
    taken = await incident(store, number)
    assert taken.state is IncidentState.OPEN, "the person resolves it, not the tracker"
    assert [e for e in taken.events if e.public] == public_before, "no public event added"
    (change,) = [e for e in taken.events if e.kind == "state_change" and not e.public]
    assert change.status is Status.HEALTHY
    assert taken.phase == "identified"

    await writer.update_incident(number, "resolved", "Disk grown; all fine.", "bob", T0 + 105)
    await watch(incidents, 110, 130, down=False)
    assert incidents.open_causes() == {}, "forgotten once its taker resolved it"
    await watch(incidents, 130, 150, down=True)  # a new fault
    (again,) = incidents.open_causes().values()
    assert again != number
    assert (await incident(store, number)).state is IncidentState.RESOLVED


async def test_a_restarted_tracker_knows_what_was_taken_over(store: Store) -> None:
    writer, reader = store
    first = tracker(store)
    await watch(first, 0, 30, down=True)
    (number,) = first.open_causes().values()
    await writer.update_incident(number, "monitoring", "Fix deployed.", "bob", T0 + 25)
    public_before = [e for e in (await incident(store, number)).events if e.public]
    successor = tracker(store)
    await successor.resume(reader)
    await watch(successor, 30, 80, down=False)
    taken = await incident(store, number)
    assert taken.state is IncidentState.OPEN
    assert [e for e in taken.events if e.public] == public_before
    assert successor.open_causes() == {("api", "database"): number}, "its taker's to resolve"
    await writer.update_incident(number, "resolved", "Done.", "bob", T0 + 85)
    await watch(successor, 90, 100, down=False)
    assert successor.open_causes() == {}


async def test_a_written_incident_is_never_the_tracker_s(store: Store) -> None:
    writer, reader = store
    number = await writer.open_written_incident(
        "Slow photo uploads",
        [IncidentComponent("api", "database", Status.DEGRADED)],
        "We are looking into it.",
        "alice",
        T0,
    )
    before = await incident(store, number)
    incidents = tracker(store)
    await incidents.resume(reader)
    assert incidents.open_causes() == {}
    await watch(incidents, 0, 30, down=True)
    await watch(incidents, 30, 60, down=False)
    after = await incident(store, number)
    assert (after.state, after.events, after.title) == (before.state, before.events, before.title)
    (automatic,) = [i for i in await reader.incidents() if i.id != number]
    assert automatic.state is IncidentState.RESOLVED, "the fault's own incident, opened and closed"
