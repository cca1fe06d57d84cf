"""The status page's write path (:mod:`monitor.store.inbox`) on SQLite and PostgreSQL: what a
subscription request writes, what it owes (one confirmation per ``resend_after``), the bound on
waiting subscribers, confirming and unsubscribing (idempotent), and two requests at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from monitor.store.inbox import SubscriberInbox, open_inbox
from monitor.store.public_models import SubscribeOutcome, SubscriberKind
from monitor.store.schema import address_key, deliveries, subscribers
from tests.monitor.store.support import Store

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)

T0 = 1_767_225_600.0
EMAIL = SubscriberKind.EMAIL
WEBHOOK = SubscriberKind.WEBHOOK
BOUNDS: dict[str, Any] = {"resend_after": 3600.0, "max_pending": 100, "pending_for": 86400.0}


@pytest.fixture
async def inbox(store: Store) -> AsyncIterator[SubscriberInbox]:
    async with open_inbox(store.url) as opened:
        yield opened


async def table(store: Store, which: Any) -> list[dict[str, Any]]:
    async with store.engine.connect() as connection:
        found = await connection.execute(select(which).order_by(which.c.id))
        return [dict(r) for r in found.mappings()]


async def test_a_request_writes_a_row_and_owes_one_confirmation(
    store: Store, inbox: SubscriberInbox
) -> None:
    outcome = await inbox.subscribe(
        EMAIL, "  Player@Example.ORG ", ["api/s3", "api", "api/s3"], "ru", T0, **BOUNDS
    )
    assert outcome is SubscribeOutcome.PENDING
    [row] = await table(store, subscribers)
    assert row["kind"] == "email" and row["address"] == "Player@example.org"
    assert row["address_key"] == address_key("player@example.org")
    assert row["language"] == "ru" and row["created_at"] == row["confirm_sent_at"] == T0
    assert row["confirmed_at"] is None and row["unsubscribed_at"] is None
    [owed] = await table(store, deliveries)
    assert (owed["subscriber_id"], owed["message_id"], owed["state"]) == (
        row["id"],
        None,
        "pending",
    )
    assert owed["next_at"] == owed["created_at"] == T0 and owed["attempts"] == 0
    read = await inbox.subscriber(row["id"])
    assert read is not None and read.components == ("api/s3", "api")  # duplicates dropped
    webhook = "https://Hooks.example.org/Path?Q=1"
    assert await inbox.subscribe(WEBHOOK, webhook, [], "en", T0, **BOUNDS) is (
        SubscribeOutcome.PENDING
    )
    assert (await table(store, subscribers))[1]["address"] == webhook  # a URL as given


async def test_one_confirmation_per_resend_after(store: Store, inbox: SubscriberInbox) -> None:
    first = await inbox.subscribe(EMAIL, "p@example.org", [], "en", T0, **BOUNDS)
    soon = await inbox.subscribe(EMAIL, "P@EXAMPLE.org", ["api"], "ru", T0 + 3599, **BOUNDS)
    later = await inbox.subscribe(EMAIL, "p@example.org", [], "en", T0 + 3600, **BOUNDS)
    assert (first, soon, later) == (
        SubscribeOutcome.PENDING,
        SubscribeOutcome.LIMITED,
        SubscribeOutcome.PENDING,
    )
    assert [d["created_at"] for d in await table(store, deliveries)] == [T0, T0 + 3600]
    [row] = await table(store, subscribers)
    assert row["confirm_sent_at"] == T0 + 3600


async def test_a_confirmed_subscriber_is_left_alone_and_sent_nothing(
    store: Store, inbox: SubscriberInbox
) -> None:
    await inbox.subscribe(EMAIL, "p@example.org", ["api"], "en", T0, **BOUNDS)
    [row] = await table(store, subscribers)
    confirmed = await inbox.confirm(row["id"], T0 + 10)
    assert confirmed is not None and confirmed.active and confirmed.confirmed_at == T0 + 10
    again = await inbox.confirm(row["id"], T0 + 20)  # a second click keeps the first time
    assert again is not None and again.confirmed_at == T0 + 10
    # Anyone may post the address: the confirmed choices are kept (no silencing by a stranger).
    outcome = await inbox.subscribe(EMAIL, "P@example.org", ["eu"], "ru", T0 + 9999, **BOUNDS)
    assert outcome is SubscribeOutcome.ALREADY
    read = await inbox.subscriber(row["id"])
    assert read is not None and read.components == ("api",) and read.language == "en"
    assert read.address == "p@example.org"
    assert len(await table(store, deliveries)) == 1
    assert await inbox.confirm(row["id"] + 1000, T0) is None
    assert await inbox.subscriber(row["id"] + 1000) is None


async def test_a_new_request_supersedes_the_confirmations_still_owed(
    store: Store, inbox: SubscriberInbox
) -> None:
    await inbox.subscribe(EMAIL, "p@example.org", [], "en", T0, **BOUNDS)
    await inbox.subscribe(EMAIL, "P@example.org", [], "en", T0 + 3600, **BOUNDS)
    await inbox.subscribe(EMAIL, "p@example.org", [], "en", T0 + 7200, **BOUNDS)
    owed = [(d["state"], d["error"], d["done_at"]) for d in await table(store, deliveries)]
    assert owed == [
        ("failed", "superseded", T0 + 3600),
        ("failed", "superseded", T0 + 7200),
        ("pending", None, None),
    ]
    [row] = await table(store, subscribers)
    assert row["address"] == "p@example.org"  # the live row's address is never rewritten


async def test_webhook_urls_differ_by_path_case_not_by_host_case(
    store: Store, inbox: SubscriberInbox
) -> None:
    for url in ("https://hooks.example.org/h/AbC", "HTTPS://Hooks.Example.ORG/h/AbC"):
        await inbox.subscribe(WEBHOOK, url, [], "en", T0, **BOUNDS)
    await inbox.subscribe(WEBHOOK, "https://hooks.example.org/h/abc", [], "en", T0, **BOUNDS)
    stored = [(r["address"], r["address_key"]) for r in await table(store, subscribers)]
    assert stored == [
        (
            "https://hooks.example.org/h/AbC",
            address_key("https://hooks.example.org/h/AbC", "webhook"),
        ),
        (
            "https://hooks.example.org/h/abc",
            address_key("https://hooks.example.org/h/abc", "webhook"),
        ),
    ]
    assert address_key("Https://HOOKS.example.org:8443/X?Y", "webhook") == address_key(
        "https://hooks.example.org:8443/X?Y", "webhook"
    )


async def test_full_when_too_many_wait(store: Store, inbox: SubscriberInbox) -> None:
    bounds = {**BOUNDS, "max_pending": 2}
    made = [
        await inbox.subscribe(EMAIL, f"p{n}@example.org", [], "en", T0 + n, **bounds)
        for n in range(3)
    ]
    assert made == [SubscribeOutcome.PENDING, SubscribeOutcome.PENDING, SubscribeOutcome.FULL]
    assert len(await table(store, subscribers)) == 2 and len(await table(store, deliveries)) == 2
    # One already waiting may ask again (it adds nothing to wait for).
    repeat = await inbox.subscribe(EMAIL, "p0@example.org", [], "en", T0 + 7200, **bounds)
    assert repeat is SubscribeOutcome.PENDING
    # A confirmed one no longer waits; requests older than pending_for lapse.
    await inbox.confirm((await table(store, subscribers))[1]["id"], T0 + 7200)
    assert await inbox.subscribe(EMAIL, "p2@example.org", [], "en", T0 + 7201, **bounds) is (
        SubscribeOutcome.PENDING
    )
    assert await inbox.subscribe(EMAIL, "p3@example.org", [], "en", T0 + 7202, **bounds) is (
        SubscribeOutcome.FULL
    )
    lapsed = T0 + 7202 + 86400
    assert await inbox.subscribe(EMAIL, "p3@example.org", [], "en", lapsed, **bounds) is (
        SubscribeOutcome.PENDING
    )


async def test_unsubscribe_is_final_for_that_row_and_idempotent(
    store: Store, inbox: SubscriberInbox
) -> None:
    await inbox.subscribe(EMAIL, "p@example.org", [], "en", T0, **BOUNDS)
    [row] = await table(store, subscribers)
    gone = await inbox.unsubscribe(row["id"], T0 + 5)
    again = await inbox.unsubscribe(row["id"], T0 + 50)
    assert gone is not None and again is not None
    assert gone.unsubscribed_at == again.unsubscribed_at == T0 + 5
    [owed] = await table(store, deliveries)  # the confirmation still owed is dropped
    assert (owed["state"], owed["error"], owed["done_at"]) == ("failed", "unsubscribed", T0 + 5)
    late = await inbox.confirm(row["id"], T0 + 6)  # an old confirmation link: still gone
    assert late is not None and not late.active and late.confirmed_at is None
    back = await inbox.subscribe(EMAIL, "p@example.org", [], "en", T0 + 7, **BOUNDS)
    assert back is SubscribeOutcome.PENDING
    old, new = await table(store, subscribers)
    assert old["address_key"] is None and new["address_key"] == address_key("p@example.org")
    assert new["id"] != old["id"]  # the old row's links never act on the new one
    assert await inbox.unsubscribe(new["id"] + 1000, T0) is None


async def test_requests_at_once_make_one_subscriber(store: Store, inbox: SubscriberInbox) -> None:
    outcomes = await asyncio.gather(
        *(inbox.subscribe(EMAIL, "p@example.org", [], "en", T0, **BOUNDS) for _ in range(5))
    )
    assert sorted(outcomes) == sorted([SubscribeOutcome.PENDING] + [SubscribeOutcome.LIMITED] * 4)
    assert len(await table(store, subscribers)) == 1
    assert len(await table(store, deliveries)) == 1
