"""The public sender against an in-memory store and fake destinations: what is sent to whom,
retries with backoff, giving up, one breaker per destination, dropping the unsubscribed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from monitor.public import sender as sending
from monitor.public.outcomes import PRIVATE_ADDRESS, Refused
from monitor.public.sender import MAX_ATTEMPTS, PublicSender, backoff
from monitor.public.settings import PageSettings, PublicSettings, SmtpSettings, SubscriptionSettings
from monitor.public.tokens import CONFIRM, UNSUBSCRIBE, parse, valid
from monitor.store.errors import LeaseLost
from monitor.store.models import (
    Component,
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentState,
    Status,
)
from monitor.store.public_models import DeliveryState, PublicMessage, SubscriberKind
from shared.resilience.testing import FakeClock
from tests.monitor.public.fakes import SECRET, FakeHooks, FakeMail, FakeStore

NOW = 1_780_000_000.0
SETTINGS = PublicSettings(
    page=PageSettings(url="https://status.questcity.test", name="QuestCity"),
    smtp=SmtpSettings(host="smtp.questcity.test", sender="status@questcity.test", timeout=5.0),
    subscriptions=SubscriptionSettings(enabled=True),
)


def make(
    store: FakeStore, mail: FakeMail | None = None, hooks: FakeHooks | None = None, **kw: Any
) -> tuple[PublicSender, FakeClock]:
    clock = FakeClock(autojump=True)
    return (
        PublicSender(
            SETTINGS,
            store,
            store,
            clock=clock,
            mail=mail if mail is not None else FakeMail(),
            webhooks=hooks if hooks is not None else FakeHooks(),
            secret=SECRET,
            **kw,
        ),
        clock,
    )


def incident_store() -> FakeStore:
    store = FakeStore(components_=[Component("api", "database", "Database", "API", 1)])
    store.incidents[7] = Incident(
        7,
        "api",
        "database",
        IncidentState.OPEN,
        Status.UNREACHABLE,
        "db down",
        NOW - 600,
        None,
        NOW - 600,
        events=(IncidentEvent(NOW - 600, "opened", Status.UNREACHABLE, "", True),),
        components=(IncidentComponent("api", "database", Status.UNREACHABLE, critical=True),),
    )
    store.messages[1] = PublicMessage(1, 7, None, "opened", "investigating", "", ("api",), NOW)
    return store


async def test_confirmation_email_carries_a_link_valid_for_confirm_within() -> None:
    store, mail = FakeStore(), FakeMail()
    person = store.add_subscriber("player@example.org", confirmed=False, language="ru")
    store.add_delivery(person.id, None, NOW - 10)
    sender, _ = make(store, mail)

    report = await sender.run_once(NOW)

    assert (report.sent, report.failed) == (1, 0)
    [email] = mail.sent
    assert email.to == "player@example.org" and email.unsubscribe_url is None
    link = next(line for line in email.text.splitlines() if "/subscriptions/confirm?token=" in line)
    assert link.startswith("https://status.questcity.test/subscriptions/confirm?token=")
    token = parse(link.split("token=", 1)[1], CONFIRM)
    assert token is not None and token.subscriber_id == person.id
    assert token.expires_at == int(NOW - 10 + SETTINGS.subscriptions.confirm_within)
    assert valid(SECRET, token, "player@example.org", NOW)
    assert not valid(SECRET, token, "other@example.org", NOW)
    assert store.deliveries[1].state is DeliveryState.SENT


async def test_webhook_confirmation_is_a_subscription_confirmation_post() -> None:
    store, hooks = FakeStore(), FakeHooks()
    hook = store.add_subscriber(
        "https://hooks.example.org/x?k=1", kind=SubscriberKind.WEBHOOK, confirmed=False
    )
    store.add_delivery(hook.id, None, NOW)
    sender, _ = make(store, hooks=hooks)

    await sender.run_once(NOW)

    [(url, payload, key)] = hooks.posted
    assert url == "https://hooks.example.org/x?k=1" and key == "questcity-delivery-1"
    assert payload["type"] == "subscription_confirmation"
    assert str(payload["confirm_url"]).startswith(
        "https://status.questcity.test/subscriptions/confirm?token=confirm.1."
    )
    assert hooks.closed == 1  # the round's HTTP client is closed with it


async def test_a_lapsed_confirmation_is_not_sent() -> None:
    store, mail = FakeStore(), FakeMail()
    person = store.add_subscriber("late@example.org", confirmed=False)
    store.add_delivery(person.id, None, NOW - SETTINGS.subscriptions.confirm_within - 1)
    sender, _ = make(store, mail)

    report = await sender.run_once(NOW)

    assert report.failed == 1 and mail.sent == []
    assert store.deliveries[1].error == "expired"


async def test_messages_fan_out_to_followers_with_an_unsubscribe_link() -> None:
    store, mail, hooks = incident_store(), FakeMail(), FakeHooks()
    fan = store.add_subscriber("fan@example.org")
    store.add_subscriber("other@example.org", components=("photos",))  # follows something else
    store.add_subscriber("https://hooks.example.org/h", kind=SubscriberKind.WEBHOOK)
    store.add_subscriber("pending@example.org", confirmed=False)
    sender, _ = make(store, mail, hooks)

    report = await sender.run_once(NOW)

    assert (report.fanned_out, report.sent) == (1, 2)
    [email] = mail.sent
    assert email.to == "fan@example.org"
    assert email.subject == "[QuestCity status] Investigating: Major outage: Database"
    assert email.unsubscribe_url is not None and email.unsubscribe_url in email.text
    token = parse(email.unsubscribe_url.split("token=", 1)[1], UNSUBSCRIBE)
    assert token is not None and valid(SECRET, token, fan.address, NOW + 10 * 365 * 86400)
    [(_, payload, _)] = hooks.posted
    assert payload["incident"]["id"] == "7"
    assert payload["meta"]["unsubscribe"].startswith(
        "https://status.questcity.test/subscriptions/unsubscribe?token=unsubscribe.3."
    )
    # Sent once: the next round has nothing to do.
    again = await sender.run_once(NOW + 5)
    assert (again.fanned_out, again.due, len(mail.sent)) == (0, 0, 1)


async def test_an_unsubscribed_subscriber_is_dropped_not_sent() -> None:
    store, mail = incident_store(), FakeMail()
    person = store.add_subscriber("gone@example.org")
    await store.fan_out(NOW)
    store.subscribers[person.id] = replace(person, unsubscribed_at=NOW - 1)
    sender, _ = make(store, mail)

    report = await sender.run_once(NOW)

    assert (report.sent, report.failed, mail.calls) == (0, 1, 0)
    assert store.deliveries[1].state is DeliveryState.FAILED
    assert store.deliveries[1].error == "unsubscribed"


async def test_a_message_never_names_a_check_made_private_after_it_was_queued() -> None:
    # Queued while the ledger check was public; it is private now (its [[checks]] says so):
    # the e-mail tells the database alone, as the page now does.
    store, mail = incident_store(), FakeMail()
    store.components_.append(
        Component("ledger", "", "Ledger port", "API", 2, kind="tcp", public=False)
    )
    store.incidents[7] = replace(
        store.incidents[7],
        components=(
            *store.incidents[7].components,
            IncidentComponent("ledger", "", Status.UNREACHABLE),
        ),
    )
    store.add_subscriber("fan@example.org")
    sender, _ = make(store, mail)

    await sender.run_once(NOW)

    [email] = mail.sent
    assert "Database" in email.text
    assert "Ledger" not in email.text and "ledger" not in email.text


async def test_a_message_about_private_checks_alone_is_dropped() -> None:
    store, mail = incident_store(), FakeMail()
    store.components_ = [Component("api", "database", "Database", "API", 1, public=False)]
    person = store.add_subscriber("fan@example.org")
    await store.fan_out(NOW)  # (the real fan-out leaves private keys out: see the store's tests)
    sender, _ = make(store, mail)

    await sender.run_once(NOW)

    assert mail.calls == 0
    assert store.deliveries[1].subscriber_id == person.id
    assert store.deliveries[1].state is DeliveryState.FAILED


async def test_a_failing_send_is_retried_with_backoff_then_given_up() -> None:
    from monitor.public.outcomes import Unreachable

    store, mail = incident_store(), FakeMail(fail_with=Unreachable("refused"))
    store.add_subscriber("fan@example.org")
    sender, clock = make(store, mail)

    now, waits = NOW, []
    for _ in range(4):
        await sender.run_once(now)
        delivery = store.deliveries[1]
        # "unavailable": the breaker, opened by the first round's tries, refused this one.
        assert delivery.state is DeliveryState.PENDING
        assert delivery.error in ("refused", "unavailable")
        waits.append(delivery.next_at - now)
        await clock.advance(delivery.next_at - now)  # the breaker's monotonic time too
        now = delivery.next_at
    assert waits == [30.0, 60.0, 120.0, 240.0]
    assert [backoff(n) for n in (1, 7, 8, 30)] == [30.0, 1920.0, 3600.0, 3600.0]
    # In a round the guard tries three times, then its breaker refuses the next round's first
    # try until its recovery time: no round sends more than three times.
    assert mail.calls <= 3 * 4

    store.deliveries[1] = replace(store.deliveries[1], attempts=MAX_ATTEMPTS - 1)
    await clock.advance(120)
    report = await sender.run_once(now)
    assert report.failed == 1
    assert store.deliveries[1].state is DeliveryState.FAILED
    assert store.deliveries[1].error in ("refused", "unavailable")


async def test_a_delivery_older_than_a_day_is_given_up() -> None:
    from monitor.public.outcomes import Unreachable

    store, mail = incident_store(), FakeMail(fail_with=Unreachable("timeout"))
    person = store.add_subscriber("fan@example.org")
    store.add_delivery(person.id, 1, NOW - sending.GIVE_UP_AFTER)
    store.messages[1] = replace(store.messages[1], fanned_out_at=NOW - sending.GIVE_UP_AFTER)
    sender, _ = make(store, mail)

    report = await sender.run_once(NOW)

    assert report.failed == 1 and store.deliveries[1].error == "timeout"


async def test_a_refusal_for_good_fails_at_once_and_spares_the_breaker() -> None:
    store, mail = incident_store(), FakeMail(fail_with=Refused("rejected", final=True))
    for n in range(5):
        store.add_subscriber(f"nobody{n}@example.org")
    sender, _ = make(store, mail)

    report = await sender.run_once(NOW)

    # Each recipient was tried once: a recipient refused is not the server failing, so the
    # breaker stayed closed for the other four.
    assert (report.failed, mail.calls) == (5, 5)
    assert {d.error for d in store.deliveries.values()} == {"rejected"}
    assert {d.attempts for d in store.deliveries.values()} == {1}


async def test_a_webhook_to_a_private_address_fails_at_once() -> None:
    store, hooks = incident_store(), FakeHooks()
    store.add_subscriber("http://internal.example.org/h", kind=SubscriberKind.WEBHOOK)
    hooks.refusing["internal.example.org"] = Refused(PRIVATE_ADDRESS, final=True)
    sender, _ = make(store, hooks=hooks)

    report = await sender.run_once(NOW)

    assert report.failed == 1
    assert store.deliveries[1].error == "private address"
    assert store.deliveries[1].state is DeliveryState.FAILED


class HangingHooks(FakeHooks):
    """Host ``dead`` never answers (its sends wait until the guard's timeout cuts them)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.sent_at: dict[str, float] = {}

    async def post(self, url: str, payload: Any, *, key: str | None = None) -> None:
        host = self.destination(url).removeprefix("webhook:")
        self.calls[host] = self.calls.get(host, 0) + 1
        if host == "dead.example.org":
            await asyncio.Event().wait()
        self.sent_at[url] = self.clock.monotonic()
        self.posted.append((url, payload, key))


async def test_one_dead_host_delays_neither_the_mail_nor_other_hosts() -> None:
    store, mail = incident_store(), FakeMail()
    for n in range(4):
        store.add_subscriber(f"https://dead.example.org/{n}", kind=SubscriberKind.WEBHOOK)
    store.add_subscriber("https://alive.example.org/a", kind=SubscriberKind.WEBHOOK)
    store.add_subscriber("https://other.example.net/b", kind=SubscriberKind.WEBHOOK)
    store.add_subscriber("fan@example.org")
    clock = FakeClock(autojump=True)
    hooks = HangingHooks(clock)
    sender = PublicSender(
        SETTINGS, store, store, clock=clock, mail=mail, webhooks=hooks, secret=SECRET
    )
    started = clock.monotonic()

    report = await sender.run_once(NOW)

    # The live destinations were served at once, and the round did not wait for the dead host
    # beyond its deadline: its two sends in flight (PER_HOST) go on, the two queued behind them
    # were not begun (still due, untouched).
    assert set(hooks.sent_at) == {"https://alive.example.org/a", "https://other.example.net/b"}
    assert set(hooks.sent_at.values()) == {started}
    assert [e.to for e in mail.sent] == ["fan@example.org"]
    assert clock.monotonic() - started == pytest.approx(sending.ROUND_DEADLINE)
    assert hooks.calls["dead.example.org"] == 2
    assert (report.sent, report.retrying, report.left) == (3, 0, 2)
    dead = [d for d in store.deliveries.values() if d.state is DeliveryState.PENDING]
    assert len(dead) == 4 and {d.attempts for d in dead} == {0}

    await sender.drain()  # the two left running time out after one try each, and record it

    assert clock.monotonic() - started == pytest.approx(sending.WEBHOOK_DEADLINE, abs=0.1)
    assert hooks.calls["dead.example.org"] == 2
    tried = [d for d in store.deliveries.values() if d.attempts == 1 and d.error == "timeout"]
    assert len(tried) == 2 and sender.in_flight == 0


async def test_a_round_sends_batches_of_per_round_while_deliveries_are_due() -> None:
    store, mail = incident_store(), FakeMail()
    for n in range(5):
        store.add_subscriber(f"p{n}@example.org")
    sender, _ = make(store, mail, per_round=2)

    first = await sender.run_once(NOW)
    second = await sender.run_once(NOW + 1)

    # Three batches (2, 2, 1) in the first round: a backlog does not wait 5 s per 50.
    assert (first.due, first.sent, second.due, len(mail.sent)) == (5, 5, 0, 5)
    assert len({e.to for e in mail.sent}) == 5


class LosingStore(FakeStore):
    async def finish_delivery(self, *args: Any, **kwargs: Any) -> None:
        raise LeaseLost("another monitor leads")


async def test_a_lost_lease_ends_the_round() -> None:
    store, mail = LosingStore(), FakeMail()
    person = store.add_subscriber("x@example.org", confirmed=False)
    store.add_delivery(person.id, None, NOW)
    sender, _ = make(store, mail)

    with pytest.raises(LeaseLost):
        await sender.run_once(NOW)


def test_build_sender_needs_subscriptions_on_and_a_key() -> None:
    off = PublicSettings()
    assert sending.build_sender(off, FakeStore(), FakeStore(), clock=FakeClock()) is None
    assert (
        sending.build_sender(SETTINGS, FakeStore(), FakeStore(), clock=FakeClock(), environ={})
        is None
    )
    built = sending.build_sender(
        SETTINGS,
        FakeStore(),
        FakeStore(),
        clock=FakeClock(),
        environ={"QUESTCITY_SUBSCRIPTION_SECRET": "k" * 40},
    )
    assert built is not None and built.mail is not None and built.webhooks is not None
