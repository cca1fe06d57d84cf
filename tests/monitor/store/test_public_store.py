"""The store's written and automatic incidents as the public hears of them (#15), on SQLite and a
real PostgreSQL: opened by hand, updated (taken over once, resolved and re-opened), given a
postmortem; the daemon's incidents queueing their messages and leaving a taken-over one to
people; every message in its change's transaction; texts cut, never refused; revision 0006 over
a store of 0005. Windows, fan-out, deliveries and retention: ``test_public_delivery``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store import (
    HistoryReader,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    Status,
    open_engine,
)
from monitor.store.migrate import StoreUpgrade, alembic_config, upgrade_store
from monitor.store.migrations import HEAD_REVISION
from monitor.store.schema import incidents, maintenances
from monitor.store.writer import HistoryWriter
from monitor.store.writing import incidents as incident_writes
from monitor.store.writing import public as public_writes
from monitor.store.writing import written as written_writes
from tests.monitor.store.public_support import BACKENDS, MAJOR, MINOR, T, count, messages
from tests.monitor.store.support import DAY, HOUR, Store, empty_store_url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# -- written incidents -------------------------------------------------------------------------


async def test_a_written_incident_is_opened_with_its_components_update_and_message(
    store: Store,
) -> None:
    listed = [IncidentComponent("api", "s3", MAJOR), IncidentComponent("web", "", MINOR)]

    incident_id = await store.writer.open_written_incident(
        "Uploads fail", listed, "We are looking into it.", "alice", T
    )

    incident = await store.reader.incident(incident_id)
    assert incident is not None
    assert (incident.origin, incident.phase, incident.state, incident.written_by) == (
        IncidentOrigin.WRITTEN,
        "investigating",
        IncidentState.OPEN,
        "alice",
    )
    assert (incident.target, incident.service, incident.impact) == ("api", "s3", MAJOR)
    assert incident.components == tuple(listed)
    [event] = incident.events
    assert (event.kind, event.phase, event.public, event.actor, event.text) == (
        "update",
        "investigating",
        True,
        "alice",
        "We are looking into it.",
    )
    assert await messages(store) == [
        (
            "opened",
            "investigating",
            "We are looking into it.",
            '["api/s3","web"]',
            incident_id,
            None,
        )
    ]
    # And the lists read it so too.
    [listed_incident] = await store.reader.incidents(with_events=True)
    assert listed_incident == incident
    found = await store.reader.open_incident_for("web", "")
    assert found is not None and found.origin is IncidentOrigin.WRITTEN
    with pytest.raises(ValueError, match="at least one component"):
        await store.writer.open_written_incident("Nothing", [], "", "alice", T)


async def test_an_update_takes_an_automatic_incident_over_once(store: Store) -> None:
    incident_id = await store.writer.open_incident("api", "s3", Status.UNHEALTHY, T, "S3 down")

    first = await store.writer.update_incident(
        incident_id, "identified", "A bad disk.", "bob", T + 1
    )
    second = await store.writer.update_incident(
        incident_id, "monitoring", "Swapped.", "carol", T + 2
    )

    assert first is not None and first.taken_over and first.phase == "identified"
    assert second is not None
    assert (second.origin, second.written_by, second.phase, second.state) == (
        IncidentOrigin.AUTO,
        "bob",  # who took it over, not who wrote last
        "monitoring",
        IncidentState.OPEN,
    )
    kinds = [(e.kind, e.phase, e.public, e.actor) for e in second.events]
    assert kinds == [
        ("opened", None, True, None),
        ("takeover", None, False, "bob"),
        ("update", "identified", True, "bob"),
        ("update", "monitoring", True, "carol"),
    ]
    assert second.updated_at == T + 2
    assert [m[:3] for m in await messages(store)] == [
        ("opened", "investigating", ""),
        ("update", "identified", "A bad disk."),
        ("update", "monitoring", "Swapped."),
    ]
    assert await store.writer.update_incident(999, "identified", "x", "bob", T) is None
    with pytest.raises(ValueError, match="unknown incident status"):
        await store.writer.update_incident(incident_id, "fixed", "x", "bob", T)


async def test_resolved_closes_and_another_phase_reopens(store: Store) -> None:
    listed = [IncidentComponent("api", "", MINOR)]
    incident_id = await store.writer.open_written_incident("Slow", listed, "Slow.", "alice", T)

    resolved = await store.writer.update_incident(incident_id, "resolved", "Fast.", "alice", T + 1)
    again = await store.writer.update_incident(incident_id, "resolved", "Still.", "alice", T + 2)
    reopened = await store.writer.update_incident(
        incident_id,
        "investigating",
        "Slow again.",
        "bob",
        T + 3,
        components=[IncidentComponent("api", "", MAJOR), IncidentComponent("api", "s3", MINOR)],
    )

    assert resolved is not None and again is not None and reopened is not None
    assert (resolved.state, resolved.resolved_at) == (IncidentState.RESOLVED, T + 1)
    assert again.resolved_at == T + 1  # resolved once: the first time stands
    assert (reopened.state, reopened.resolved_at, reopened.phase) == (
        IncidentState.OPEN,
        None,
        "investigating",
    )
    assert reopened.components == (
        IncidentComponent("api", "", MAJOR),
        IncidentComponent("api", "s3", MINOR),
    )
    assert reopened.impact is MAJOR
    assert not any(e.kind == "takeover" for e in reopened.events)  # written: nothing to take
    assert [(m[0], m[1], m[3]) for m in await messages(store)] == [
        ("opened", "investigating", '["api"]'),
        ("resolved", "resolved", '["api"]'),
        ("resolved", "resolved", '["api"]'),
        ("update", "investigating", '["api","api/s3"]'),
    ]


async def test_a_postmortem_is_published_with_its_event_and_message(store: Store) -> None:
    incident_id = await store.writer.open_incident("api", "", Status.UNREACHABLE, T, "API down")
    await store.writer.resolve_incident(incident_id, T + HOUR, "API is operating normally.")

    written = await store.writer.write_postmortem(
        incident_id, "A full disk.\n\nWe…", "dan", T + DAY
    )

    assert written is not None
    assert (written.postmortem, written.postmortem_at) == ("A full disk.\n\nWe…", T + DAY)
    assert not written.taken_over and written.state is IncidentState.RESOLVED
    event = written.events[-1]
    assert (event.kind, event.public, event.actor, event.text) == (
        "postmortem",
        True,
        "dan",
        "A full disk.\n\nWe…",
    )
    assert (await messages(store))[-1] == (
        "postmortem",
        "resolved",
        "A full disk.\n\nWe…",
        '["api"]',
        incident_id,
        None,
    )
    assert await store.writer.write_postmortem(999, "x", "dan", T) is None


# -- the daemon's incidents ----------------------------------------------------------------------


async def test_the_daemons_incidents_queue_opened_and_resolved(store: Store) -> None:
    affected = [
        IncidentComponent("api", "database", Status.UNHEALTHY, critical=True),
        IncidentComponent("api", "", Status.DEGRADED),
    ]
    incident_id = await store.writer.open_incident(
        "api", "database", Status.UNHEALTHY, T, "DB down", components=affected
    )
    await store.writer.resolve_incident(incident_id, T + 60, "Database is operating normally.")
    await store.writer.resolve_incident(incident_id, T + 61, "again")  # (nothing more to tell)

    assert await messages(store) == [
        ("opened", "investigating", "", '["api/database","api"]', incident_id, None),
        ("resolved", "resolved", "", '["api/database","api"]', incident_id, None),
    ]
    incident = await store.reader.incident(incident_id)
    assert incident is not None and incident.origin is IncidentOrigin.AUTO
    assert incident.phase is None and incident.written_by is None


async def test_a_taken_over_incident_is_left_to_people(store: Store) -> None:
    incident_id = await store.writer.open_incident("api", "s3", Status.UNHEALTHY, T, "S3 down")
    await store.writer.update_incident(incident_id, "identified", "A bad disk.", "bob", T + 1)

    await store.writer.add_event(
        incident_id, IncidentEvent(T + 2, "state_change", Status.UNREACHABLE, "worse", True)
    )
    await store.writer.retitle_incident(incident_id, "S3 and API down", Status.UNREACHABLE)
    await store.writer.resolve_incident(incident_id, T + 3, "S3 is operating normally.")
    await store.writer.add_note(incident_id, "Disk swapped.", public=True, actor="bob", at=T + 4)

    incident = await store.reader.incident(incident_id)
    assert incident is not None
    assert (incident.state, incident.resolved_at, incident.title) == (
        IncidentState.OPEN,
        None,
        "S3 down",
    )
    assert incident.impact is Status.UNREACHABLE  # the worst seen is still recorded
    tail = [(e.kind, e.public, e.actor) for e in incident.events[-3:]]
    assert tail == [
        ("state_change", False, None),
        ("state_change", False, None),  # the recovery: internal, not a resolution
        ("note", True, "bob"),  # a person's public note stays public
    ]
    assert [m[0] for m in await messages(store)] == ["opened", "update"]


# -- a message exists if and only if its change does ---------------------------------------------


def _failing_after(real: Any) -> Any:
    async def queue_then_fail(*args: Any, **kwargs: Any) -> int:
        await real(*args, **kwargs)
        raise RuntimeError("the process died after queueing")

    return queue_then_fail


async def test_a_failed_write_leaves_no_message_and_no_change(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    auto = await store.writer.open_incident("api", "", Status.UNHEALTHY, T, "API down")
    before = await messages(store)
    for module in (written_writes, incident_writes, public_writes):
        monkeypatch.setattr(module, "queue_message", _failing_after(module.queue_message))
    listed = [IncidentComponent("api", "", MINOR)]

    for write in (
        store.writer.open_written_incident("Slow", listed, "Slow.", "alice", T),
        store.writer.update_incident(auto, "identified", "Found.", "alice", T),
        store.writer.write_postmortem(auto, "Text", "alice", T),
        store.writer.resolve_incident(auto, T, "fine"),
        store.writer.open_incident("web", "", Status.UNHEALTHY, T, "Web down"),
        store.writer.schedule_maintenance("Work", ["api"], T + HOUR, T + 2 * HOUR, None, "a", T),
    ):
        with pytest.raises(RuntimeError):
            await write

    assert await messages(store) == before
    assert await count(store, incidents) == 1
    assert await count(store, maintenances) == 0
    incident = await store.reader.incident(auto)
    assert incident is not None
    assert (incident.state, incident.written_by, incident.postmortem) == (
        IncidentState.OPEN,
        None,
        None,
    )
    assert [e.kind for e in incident.events] == ["opened"]


# -- texts from people are cut, never refused ---------------------------------------------------


async def test_long_and_odd_texts_are_stored_cut(store: Store) -> None:
    odd = "line one\nline\x00 two \ud800 " + "y" * 30_000
    key = "api/" + "s" * 600
    incident_id = await store.writer.open_written_incident(
        "T\x00" + "t" * 400, [IncidentComponent("api", "", MINOR)], odd, "b\x00" + "y" * 300, T
    )
    window = await store.writer.schedule_maintenance(
        "w" * 300, [key], T, T + HOUR, odd, "a" * 300, T
    )
    updated = await store.writer.update_incident(incident_id, "identified", odd, "c" * 300, T)
    posted = await store.writer.write_postmortem(incident_id, odd * 5, "d" * 300, T)

    assert updated is not None and posted is not None
    assert len(updated.title) <= 300 and "\x00" not in updated.title
    assert updated.written_by is not None and len(updated.written_by) == 200
    assert updated.events[-1].text.startswith("line one\nline two ")
    assert len(updated.events[-1].text) <= 20_000
    assert posted.postmortem is not None and len(posted.postmortem) <= 100_000
    found = await store.reader.maintenance(window)
    assert found is not None
    assert len(found.title) == 200 and len(found.created_by) == 200
    assert found.components == (key[:401],)
    assert all(len(m[2]) <= 20_000 for m in await messages(store))


# -- revision 0006 over a store of 0005 -----------------------------------------------------------


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(backend, request, tmp_path)


@pytest.fixture
async def store_of_0005(empty_url: str) -> AsyncIterator[AsyncEngine]:
    """A store as the signals' monitor (revision 0005) left it, with an incident, its
    component and its events."""
    engine = open_engine(empty_url)

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
        for statement in (
            "INSERT INTO incidents (target, service, state, impact, title, opened_at, updated_at)"
            f" VALUES ('api', 'database', 'open', 'unhealthy', 'DB down', {T}, {T})",
            "INSERT INTO incident_components (incident_id, target, service, status, critical)"
            " VALUES (1, 'api', 'database', 'unhealthy', true)",
            "INSERT INTO incident_events (incident_id, at, kind, status, text, public, actor)"
            f" VALUES (1, {T}, 'opened', 'unhealthy', 'We are investigating.', true, NULL)",
            "INSERT INTO incident_events (incident_id, at, kind, status, text, public, actor)"
            f" VALUES (1, {T + 1}, 'note', NULL, 'Looking.', false, 'alice')",
        ):
            await connection.execute(text(statement))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_revision_0006_keeps_a_0005_stores_incidents(store_of_0005: AsyncEngine) -> None:
    engine = store_of_0005
    # A status page upgraded before its monitor reads the old store as it is.
    old = HistoryReader(engine)
    [before] = await old.incidents(with_events=True, and_open=True)
    assert (before.title, before.origin, before.phase, before.written_by) == (
        "DB down",
        IncidentOrigin.AUTO,
        None,
        None,
    )
    assert [(e.kind, e.actor) for e in before.events] == [("opened", None), ("note", "alice")]
    assert before.components == (IncidentComponent("api", "database", Status.UNHEALTHY, True),)
    assert await old.open_incident_for("api", "database") == replace(before, events=())
    assert await old.maintenances(since=0) == []

    done = await upgrade_store(engine)

    assert done == StoreUpgrade(before="0005", after=HEAD_REVISION, recognised=False)
    reader, writer = HistoryReader(engine), HistoryWriter(engine)
    assert await reader.incident(1) == before  # every row keeps its meaning
    async with engine.connect() as connection:
        origins = (await connection.execute(select(incidents.c.origin))).scalars().all()
    assert origins == ["auto"]
    # And takes the new writes: a person takes the old incident over and resolves it.
    updated = await writer.update_incident(1, "resolved", "Fixed.", "bob", T + 2)
    assert updated is not None and updated.state is IncidentState.RESOLVED
    assert [e.kind for e in updated.events][-2:] == ["takeover", "update"]
    window = await writer.schedule_maintenance("W", ["api"], T, T + HOUR, None, "bob", T)
    assert [m.id for m in await reader.maintenances(since=T)] == [window]
