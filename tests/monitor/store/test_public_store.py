"""The store's public side (#15) on SQLite and a real PostgreSQL: written incidents (opened,
updated, taken over once, resolved and re-opened, given a postmortem), the daemon's incidents
queueing their messages and leaving a taken-over one to people, every message in its change's
transaction, maintenance windows (scheduled, listed, cancelled, marked once by two writers),
fan-out into deliveries (followers only, idempotent, in chunks), deliveries finished, retention
of the public rows, texts bounded, and revision 0006 over a store of 0005."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store import (
    DECLARED_IMPACTS,
    DeliveryState,
    HistoryReader,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    MaintenanceEvent,
    Status,
    StoreError,
    Subscriber,
    SubscriberKind,
    open_engine,
)
from monitor.store.migrate import StoreUpgrade, alembic_config, upgrade_store
from monitor.store.migrations import HEAD_REVISION
from monitor.store.schema import (
    address_key,
    deliveries,
    incidents,
    maintenances,
    public_messages,
    subscribers,
)
from monitor.store.writer import HistoryWriter
from monitor.store.writing import incidents as incident_writes
from monitor.store.writing import public as public_writes
from monitor.store.writing import written as written_writes
from monitor.store.writing.public import follows
from tests.monitor.store.support import DAY, DAY0, HOUR, Store, empty_store_url

T = DAY0
MAJOR = DECLARED_IMPACTS["major"]
MINOR = DECLARED_IMPACTS["minor"]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both databases; the threaded reader reads nothing here that the others do not."""
    name: str = request.param
    return name


async def _messages(store: Store) -> list[tuple[Any, ...]]:
    """(event, phase, text, components, incident_id, maintenance_id) of every message queued."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(
                public_messages.c.event,
                public_messages.c.phase,
                public_messages.c.text,
                public_messages.c.components,
                public_messages.c.incident_id,
                public_messages.c.maintenance_id,
            ).order_by(public_messages.c.id)
        )
        return [tuple(r) for r in rows]


async def _count(store: Store, table: Any, *where: Any) -> int:
    async with store.engine.connect() as connection:
        return int(
            await connection.scalar(select(func.count()).select_from(table).where(*where)) or 0
        )


async def _subscriber(
    store: Store,
    address: str,
    *,
    components: str = "",
    confirmed: float | None = T,
    unsubscribed: float | None = None,
    created: float = T,
    sent: float | None = None,
) -> int:
    """A subscriber row as the page's inbox writes it (``monitor.store.inbox`` is the web's)."""
    async with store.engine.begin() as connection:
        result = await connection.execute(
            insert(subscribers).values(
                kind="email",
                address=address,
                address_key=None if unsubscribed is not None else address_key(address),
                components=components,
                language="en",
                created_at=created,
                confirmed_at=confirmed,
                unsubscribed_at=unsubscribed,
                confirm_sent_at=sent,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


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
    assert await _messages(store) == [
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
    assert [m[:3] for m in await _messages(store)] == [
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
    assert [(m[0], m[1], m[3]) for m in await _messages(store)] == [
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
    assert (await _messages(store))[-1] == (
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

    assert await _messages(store) == [
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
    assert [m[0] for m in await _messages(store)] == ["opened", "update"]


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
    before = await _messages(store)
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

    assert await _messages(store) == before
    assert await _count(store, incidents) == 1
    assert await _count(store, maintenances) == 0
    incident = await store.reader.incident(auto)
    assert incident is not None
    assert (incident.state, incident.written_by, incident.postmortem) == (
        IncidentState.OPEN,
        None,
        None,
    )
    assert [e.kind for e in incident.events] == ["opened"]


# -- maintenance windows ------------------------------------------------------------------------


async def test_windows_are_scheduled_listed_and_read(store: Store) -> None:
    w = store.writer
    past = await w.schedule_maintenance("Old", ["api"], T - 3 * HOUR, T - 2 * HOUR, None, "a", T)
    later = await w.schedule_maintenance(
        "DB upgrade", ["api/database", "web", "api/database"], T + 2 * HOUR, T + 3 * HOUR,
        "Ten minutes of read-only.", "alice", T,
    )  # fmt: skip
    now = await w.schedule_maintenance("Now", ["web"], T - HOUR, T + HOUR, None, "bob", T)
    gone = await w.schedule_maintenance("Gone", ["api"], T, T + HOUR, None, "bob", T)
    await w.cancel_maintenance(gone, "bob", T + 1)

    listed = await store.reader.maintenances(since=T)
    with_cancelled = await store.reader.maintenances(since=T - 3 * HOUR, include_cancelled=True)

    assert [m.id for m in listed] == [now, later]
    assert [m.id for m in with_cancelled] == [past, now, gone, later]
    assert [m.id for m in await store.reader.maintenances(since=T, limit=1)] == [now]
    window = listed[1]
    assert (window.title, window.message, window.components, window.created_by) == (
        "DB upgrade",
        "Ten minutes of read-only.",
        ("api/database", "web"),
        "alice",
    )
    assert window.events == () and window.upcoming(T) and listed[0].active(T)
    assert ("scheduled", None, "Ten minutes of read-only.", '["api/database","web"]') in [
        m[:4] for m in await _messages(store)
    ]
    assert await store.reader.maintenance(999) is None


async def test_a_window_is_cancelled_once_and_a_completed_one_is_refused(store: Store) -> None:
    w = store.writer
    ahead = await w.schedule_maintenance("Work", ["api"], T + HOUR, T + 2 * HOUR, None, "a", T)
    done = await w.schedule_maintenance("Done", ["api"], T - 2 * HOUR, T - HOUR, None, "a", T)
    await w.mark_maintenance(done, "completed", T - HOUR)

    cancelled = await w.cancel_maintenance(ahead, "bob", T + 1)
    again = await w.cancel_maintenance(ahead, "carol", T + 2)
    refused = await w.cancel_maintenance(done, "bob", T + 3)

    assert cancelled is not None and again == cancelled
    assert (cancelled.cancelled_at, cancelled.cancelled_by) == (T + 1, "bob")
    assert [(e.kind, e.at) for e in cancelled.events] == [("cancelled", T + 1)]
    assert refused is not None and refused.cancelled_at is None
    assert [m[0] for m in await _messages(store)] == [
        "scheduled",
        "scheduled",
        "completed",
        "cancelled",
    ]
    assert await w.cancel_maintenance(999, "bob", T) is None
    assert not await w.mark_maintenance(ahead, "started", T + HOUR)  # cancelled: never starts


async def test_of_two_monitors_marking_a_window_one_does(
    store: Store, request: pytest.FixtureRequest
) -> None:
    window = await store.writer.schedule_maintenance("Work", ["api"], T, T + HOUR, None, "a", T)
    engines = [store.engine, open_engine(store.url)]
    try:
        writers = [HistoryWriter(e) for e in engines]
        for kind, at in (("started", T), ("completed", T + HOUR)):
            marked = await asyncio.gather(*(w.mark_maintenance(window, kind, at) for w in writers))
            assert sorted(marked) == [False, True], kind
    finally:
        await engines[1].dispose()

    found = await store.reader.maintenance(window)
    assert found is not None
    assert (found.started_at, found.completed_at) == (T, T + HOUR)
    assert [e.kind for e in found.events] == ["started", "completed"]
    assert [m[0] for m in await _messages(store)] == ["scheduled", "started", "completed"]
    with pytest.raises(ValueError, match="started or completed"):
        await store.writer.mark_maintenance(window, "cancelled", T)


async def test_a_windows_events_are_kept_in_order_and_bounded(store: Store) -> None:
    window = await store.writer.schedule_maintenance("W", ["api"], T, T + HOUR, None, "a", T)

    await store.writer.add_maintenance_event(
        window, MaintenanceEvent(T + 2, "incident_opened", "Incident 7 opened.")
    )
    await store.writer.add_maintenance_event(
        window, MaintenanceEvent(T + 1, "held_alert", "breaker_open\x00 " + "x" * 900)
    )

    found = await store.reader.maintenance(window)
    assert found is not None
    assert [e.kind for e in found.events] == ["held_alert", "incident_opened"]
    assert len(found.events[0].text) == 500 and "\x00" not in found.events[0].text


# -- fan-out and deliveries ---------------------------------------------------------------------


def test_the_fan_outs_follows_is_the_subscribers() -> None:
    cases = [(), ("api",), ("api/s3",), ("web",), ("api/s3", "web")]
    for listed in cases:
        subscriber = Subscriber(1, SubscriberKind.EMAIL, "a@b.c", listed, "en", T, T)
        for keys in [(), ("api",), ("api/s3",), ("api/database",), ("web/x", "db")]:
            assert follows(listed, keys) == subscriber.follows(keys), (listed, keys)


async def test_fan_out_makes_one_delivery_per_following_active_subscriber(store: Store) -> None:
    everyone = await _subscriber(store, "all@example.org")
    s3 = await _subscriber(store, "s3@example.org", components='["api/s3"]')
    api = await _subscriber(store, "api@example.org", components='["api"]')
    web = await _subscriber(store, "web@example.org", components='["web"]')
    await _subscriber(store, "new@example.org", confirmed=None)
    await _subscriber(store, "gone@example.org", unsubscribed=T)
    await store.writer.open_written_incident(
        "S3", [IncidentComponent("api", "s3", MAJOR)], "Uploads fail.", "alice", T
    )
    await store.writer.schedule_maintenance("Web", ["web"], T + HOUR, T + 2 * HOUR, None, "a", T)

    assert await store.writer.fan_out(T + 5) == 2
    assert await store.writer.fan_out(T + 6) == 0  # nothing queued any more

    async with store.engine.connect() as connection:
        made = (
            await connection.execute(
                select(deliveries.c.message_id, deliveries.c.subscriber_id).order_by(
                    deliveries.c.message_id, deliveries.c.subscriber_id
                )
            )
        ).all()
    assert [tuple(r) for r in made] == [
        (1, everyone),
        (1, s3),
        (1, api),
        (2, everyone),
        (2, web),
    ]
    due = await store.reader.due_deliveries(now=T + 5)
    assert len(due) == 5
    assert all(
        (d.state, d.attempts, d.next_at, d.created_at) == (DeliveryState.PENDING, 0, T + 5, T + 5)
        for d in due
    )
    message = await store.reader.public_message(1)
    assert message is not None and message.fanned_out_at == T + 5
    assert message.components == ("api/s3",) and message.text == "Uploads fail."


async def test_fan_out_again_adds_no_second_delivery(store: Store) -> None:
    """A fan-out cut short (a message's deliveries made, ``fanned_out_at`` not set) is done
    again by the next run: the deliveries it had made are skipped, not doubled."""
    ids = [await _subscriber(store, f"s{n}@example.org") for n in range(5)]
    await store.writer.schedule_maintenance("W", [], T + HOUR, T + 2 * HOUR, None, "a", T)
    transactions = 0

    async def counting(connection: Any) -> None:
        nonlocal transactions
        transactions += 1

    writer = HistoryWriter(store.engine, fence=counting)
    writer.fan_out_chunk = 2
    writer.clock = _NoSleep()

    assert await writer.fan_out(T) == 1
    assert transactions == 3  # 2 + 2 + 1 deliveries, a fenced transaction each
    async with store.engine.begin() as connection:
        await connection.execute(update(public_messages).values(fanned_out_at=None))
        await connection.execute(deliveries.delete().where(deliveries.c.subscriber_id == ids[0]))
    assert await writer.fan_out(T + 1) == 1

    assert await _count(store, deliveries) == 5
    async with store.engine.connect() as connection:
        created = (await connection.execute(select(deliveries.c.created_at))).scalars().all()
    assert sorted(created) == [T, T, T, T, T + 1]


class _NoSleep:
    """A clock whose sleeps (the pause between SQLite chunks) return at once."""

    def wall(self) -> float:
        return T

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


async def test_deliveries_are_tried_and_finished(store: Store) -> None:
    subscriber = await _subscriber(store, "Alice@Example.org", components='["api"]')
    await store.writer.open_incident("api", "", Status.UNREACHABLE, T, "API down")
    await store.writer.open_incident("web", "", Status.UNREACHABLE, T + 1, "Web down")
    await _subscriber(store, "web@example.org", components='["web"]')
    await store.writer.fan_out(T + 2)
    first, second = await store.reader.due_deliveries(now=T + 2)

    await store.writer.finish_delivery(
        first.id, DeliveryState.PENDING, T + 3, error="timeout", next_at=T + 60
    )
    await store.writer.finish_delivery(second.id, DeliveryState.SENT, T + 4)

    assert await store.reader.due_deliveries(now=T + 59) == []
    [retry] = await store.reader.due_deliveries(now=T + 60)
    assert (retry.id, retry.attempts, retry.error, retry.state) == (
        first.id,
        1,
        "timeout",
        DeliveryState.PENDING,
    )
    await store.writer.finish_delivery(first.id, DeliveryState.FAILED, T + 61, error="e" * 300)
    async with store.engine.connect() as connection:
        rows = (await connection.execute(select(deliveries).order_by(deliveries.c.id))).all()
    assert [(r.state, r.attempts, r.done_at, r.error) for r in rows] == [
        ("failed", 2, T + 61, "e" * 100),
        ("sent", 1, T + 4, None),
    ]
    found = await store.reader.subscriber(subscriber)
    assert found is not None
    assert (found.address, found.components, found.active) == ("Alice@Example.org", ("api",), True)
    assert await store.reader.subscriber(999) is None
    assert await store.reader.public_message(999) is None


async def test_one_live_subscriber_per_kind_and_address(store: Store) -> None:
    await _subscriber(store, "alice@example.org")
    await _subscriber(store, "ALICE@example.org ", unsubscribed=T)  # a lapsed row: no key

    with pytest.raises(StoreError):
        async with store.writer._begin() as connection:  # (the writer's error funnel)
            await connection.execute(
                insert(subscribers).values(
                    kind="email",
                    address="Alice@Example.ORG",
                    address_key=address_key("Alice@Example.ORG"),
                    language="ru",
                    created_at=T,
                )
            )
    async with store.engine.begin() as connection:  # another kind may have it
        await connection.execute(
            insert(subscribers).values(
                kind="webhook",
                address="alice@example.org",
                address_key=address_key("alice@example.org"),
                language="en",
                created_at=T,
            )
        )
    assert await _count(store, subscribers) == 3


# -- retention ----------------------------------------------------------------------------------


async def test_retention_forgets_lapsed_addresses_and_old_news(store: Store) -> None:
    now = T + 100 * DAY
    active = await _subscriber(store, "active@example.org", created=T)
    await _subscriber(store, "never@example.org", confirmed=None, created=now - 9 * DAY)
    waiting = await _subscriber(
        store, "waiting@example.org", confirmed=None, created=now - 9 * DAY, sent=now - DAY
    )
    await _subscriber(store, "left@example.org", unsubscribed=now - 31 * DAY)
    recent = await _subscriber(store, "recent@example.org", unsubscribed=now - 29 * DAY)
    w = store.writer
    old = await w.open_incident("api", "", Status.UNHEALTHY, T, "Old")  # message 1
    await w.fan_out(T)  # (to the one active subscriber)
    await w.open_incident("web", "", Status.UNHEALTHY, now - DAY, "New")  # message 2
    await w.fan_out(now - DAY)
    [*due] = await store.reader.due_deliveries(now=now)
    for d in due:
        if d.message_id == 2 and d.subscriber_id == active:
            await w.finish_delivery(d.id, DeliveryState.SENT, now - DAY)
    await w.schedule_maintenance("Ended", ["api"], T, T + HOUR, None, "a", T)
    kept = await w.schedule_maintenance(
        "Kept", ["api"], now - 5 * DAY, now - 4 * DAY, None, "a", now - 6 * DAY
    )

    removed = await w.apply_retention(now, raw_days=7, hourly_days=30, daily_days=60)

    assert removed["subscribers"] == 2  # never confirmed for 9 days; unsubscribed 31 days ago
    async with store.engine.connect() as connection:
        left = (await connection.execute(select(subscribers.c.id).order_by("id"))).scalars().all()
    assert list(left) == [active, waiting, recent]
    # Message 1 (100 days old) and its deliveries are gone, and the news of scheduling "Ended"
    # though never fanned out (stale news is told to nobody); message 2 and "Kept"'s stay.
    assert [m.id for m in [await store.reader.public_message(i) for i in (1, 2)] if m] == [2]
    assert removed["public_messages"] == 2
    async with store.engine.connect() as connection:
        message_ids = (await connection.execute(select(deliveries.c.message_id))).scalars().all()
    assert set(message_ids) == {2}
    assert removed["maintenances"] == 1
    assert [m.id for m in await store.reader.maintenances(since=0, include_cancelled=True)] == [
        kept
    ]
    incident = await store.reader.incident(old)
    assert incident is not None  # incidents are history: retention leaves them


async def test_retention_removes_finished_deliveries_after_the_raw_window(store: Store) -> None:
    await _subscriber(store, "a@example.org")
    await _subscriber(store, "b@example.org")
    now = T + 10 * DAY
    await store.writer.open_incident("api", "", Status.UNHEALTHY, now - 8 * DAY, "x")
    await store.writer.fan_out(now - 8 * DAY)
    sent, pending = await store.reader.due_deliveries(now=now)
    await store.writer.finish_delivery(sent.id, DeliveryState.SENT, now - 8 * DAY)

    removed = await store.writer.apply_retention(now, raw_days=7, hourly_days=30, daily_days=60)

    assert removed["deliveries"] == 1
    assert [d.id for d in await store.reader.due_deliveries(now=now)] == [pending.id]


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
    assert all(len(m[2]) <= 20_000 for m in await _messages(store))


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
