"""The store's maintenance windows and the sender's side of subscriptions (#15), on SQLite and a
real PostgreSQL: windows scheduled, listed, cancelled once, marked once by two writers; fan-out
into deliveries (followers only, idempotent, in chunks); deliveries retried and finished; one
live subscriber per address; retention of lapsed addresses and old news."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from monitor.store import (
    DeliveryState,
    IncidentComponent,
    MaintenanceEvent,
    Status,
    StoreError,
    Subscriber,
    SubscriberKind,
    open_engine,
)
from monitor.store.public_models import follows
from monitor.store.schema import address_key, deliveries, public_messages, subscribers
from monitor.store.writer import HistoryWriter
from tests.monitor.store.public_support import (
    BACKENDS,
    MAJOR,
    T,
    add_subscriber,
    count,
    messages,
)
from tests.monitor.store.support import DAY, HOUR, Store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


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
        m[:4] for m in await messages(store)
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
    assert [m[0] for m in await messages(store)] == [
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
    assert [m[0] for m in await messages(store)] == ["scheduled", "started", "completed"]
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


def test_a_target_and_its_services_follow_each_other_both_ways() -> None:
    def told(listed: tuple[str, ...], keys: tuple[str, ...]) -> bool:
        subscriber = Subscriber(1, SubscriberKind.EMAIL, "a@b.c", listed, "en", T, T)
        assert subscriber.follows(keys) == follows(listed, keys)
        return subscriber.follows(keys)

    assert told(("api/s3",), ("api",))  # a window on all of api is news for api/s3's follower
    assert told(("api",), ("api/s3",))
    assert told(("api/s3",), ("api/s3",)) and told(("api",), ("api",))
    assert told((), ("api",)) and told(("api/s3",), ())
    assert told(("web", "api/s3"), ("db", "api"))
    assert not told(("api/s3",), ("api/database",))
    assert not told(("api/s3",), ("web",)) and not told(("api",), ("web/x", "apix"))
    assert not told(("api/s3",), ("web/s3",))


async def test_fan_out_tells_a_services_follower_of_its_whole_target(store: Store) -> None:
    s3 = await add_subscriber(store, "s3@example.org", components='["api/s3"]')
    api = await add_subscriber(store, "api@example.org", components='["api"]')
    db = await add_subscriber(store, "db@example.org", components='["api/database", "web"]')
    await add_subscriber(store, "web@example.org", components='["web"]')
    await store.writer.schedule_maintenance("All", ["api"], T + HOUR, T + 2 * HOUR, None, "a", T)
    await store.writer.open_written_incident(
        "S3", [IncidentComponent("api", "s3", MAJOR)], "Uploads fail.", "alice", T
    )

    assert await store.writer.fan_out(T + 5) == 2

    async with store.engine.connect() as connection:
        made = (
            await connection.execute(
                select(deliveries.c.message_id, deliveries.c.subscriber_id).order_by(
                    deliveries.c.message_id, deliveries.c.subscriber_id
                )
            )
        ).all()
    assert [tuple(r) for r in made] == [(1, s3), (1, api), (1, db), (2, s3), (2, api)]


async def test_fan_out_makes_one_delivery_per_following_activeadd_subscriber(store: Store) -> None:
    everyone = await add_subscriber(store, "all@example.org")
    s3 = await add_subscriber(store, "s3@example.org", components='["api/s3"]')
    api = await add_subscriber(store, "api@example.org", components='["api"]')
    web = await add_subscriber(store, "web@example.org", components='["web"]')
    await add_subscriber(store, "new@example.org", confirmed=None)
    await add_subscriber(store, "gone@example.org", unsubscribed=T)
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
    ids = [await add_subscriber(store, f"s{n}@example.org") for n in range(5)]
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

    assert await count(store, deliveries) == 5
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
    subscriber = await add_subscriber(store, "Alice@Example.org", components='["api"]')
    await store.writer.open_incident("api", "", Status.UNREACHABLE, T, "API down")
    await store.writer.open_incident("web", "", Status.UNREACHABLE, T + 1, "Web down")
    await add_subscriber(store, "web@example.org", components='["web"]')
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
    await add_subscriber(store, "alice@example.org")
    await add_subscriber(store, "ALICE@example.org ", unsubscribed=T)  # a lapsed row: no key

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
    assert await count(store, subscribers) == 3


# -- retention ----------------------------------------------------------------------------------


async def test_retention_forgets_lapsed_addresses_and_old_news(store: Store) -> None:
    now = T + 100 * DAY
    active = await add_subscriber(store, "active@example.org", created=T)
    await add_subscriber(store, "never@example.org", confirmed=None, created=now - 9 * DAY)
    waiting = await add_subscriber(
        store, "waiting@example.org", confirmed=None, created=now - 9 * DAY, sent=now - DAY
    )
    await add_subscriber(store, "left@example.org", unsubscribed=now - 31 * DAY)
    recent = await add_subscriber(store, "recent@example.org", unsubscribed=now - 29 * DAY)
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
    await add_subscriber(store, "a@example.org")
    await add_subscriber(store, "b@example.org")
    now = T + 10 * DAY
    await store.writer.open_incident("api", "", Status.UNHEALTHY, now - 8 * DAY, "x")
    await store.writer.fan_out(now - 8 * DAY)
    sent, pending = await store.reader.due_deliveries(now=now)
    await store.writer.finish_delivery(sent.id, DeliveryState.SENT, now - 8 * DAY)

    removed = await store.writer.apply_retention(now, raw_days=7, hourly_days=30, daily_days=60)

    assert removed["deliveries"] == 1
    assert [d.id for d in await store.reader.due_deliveries(now=now)] == [pending.id]
