"""The sender's rounds under hostile load (#15 review): what subscribers are told goes before a
flood of confirmation requests to slow webhooks; a round keeps its deadline and sends nothing
twice; many names pointed at one address share that address's lane and breaker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from monitor.public import sender as sending
from monitor.public.outcomes import UNAVAILABLE
from monitor.public.sender import PublicSender
from monitor.store.public_models import DeliveryState, SubscriberKind
from shared.resilience.testing import FakeClock
from tests.monitor.public.fakes import SECRET, FakeHooks, FakeMail
from tests.monitor.public.test_sender import NOW, SETTINGS, incident_store


class Tarpit(FakeHooks):
    """Every webhook is accepted and never answered (the sender's deadline cuts it)."""

    async def post(self, url: str, payload: Any, *, key: str | None = None) -> None:
        host = self.destination(url).removeprefix("webhook:")
        self.calls[host] = self.calls.get(host, 0) + 1
        await asyncio.Event().wait()


class StampedMail(FakeMail):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[float] = []

    async def send(self, email: Any) -> None:
        await super().send(email)
        self.at.append(self.clock.monotonic())


def sender_for(store: Any, mail: FakeMail, hooks: FakeHooks, clock: FakeClock) -> PublicSender:
    return PublicSender(
        SETTINGS, store, store, clock=clock, mail=mail, webhooks=hooks, secret=SECRET
    )


async def test_an_incident_email_goes_first_past_fifty_slow_webhook_confirmations() -> None:
    store, clock = incident_store(), FakeClock(autojump=True)
    mail, hooks = StampedMail(clock), Tarpit()
    for n in range(50):  # strangers' requests, queued before the incident, each host a tarpit
        hook = store.add_subscriber(
            f"https://t{n}.attacker.test/h", kind=SubscriberKind.WEBHOOK, confirmed=False
        )
        store.add_delivery(hook.id, None, NOW - 100)
    store.add_subscriber("fan@example.org")
    sender = sender_for(store, mail, hooks, clock)
    started = clock.monotonic()

    report = await sender.run_once(NOW)

    # The e-mail went at the round's start, the round ended at its deadline, and of the
    # requests only the round's budget was touched.
    assert [e.to for e in mail.sent] == ["fan@example.org"] and mail.at == [started]
    assert clock.monotonic() - started == pytest.approx(sending.ROUND_DEADLINE)
    assert report.sent == 1
    # Four webhook slots, all held by the tarpit (the e-mail had its own).
    assert sum(hooks.calls.values()) == report.left == sending.CONCURRENCY

    # The next round, while those are still in flight, does not send them again: it waits for
    # their slots (freed by their timeouts) and sends four others.
    again = await sender.run_once(NOW + 5)
    assert len(hooks.calls) == 2 * sending.CONCURRENCY
    assert all(calls == 1 for calls in hooks.calls.values())
    assert again.left == sending.CONCURRENCY
    await sender.drain()
    timed_out = [d for d in store.deliveries.values() if d.error == "timeout"]
    assert len(timed_out) == sum(hooks.calls.values())
    assert {d.attempts for d in timed_out} == {1}  # one record per send, no more
    assert store.deliveries[51].state is DeliveryState.SENT and store.deliveries[51].attempts == 1


async def test_many_names_for_one_address_share_its_lane_and_breaker() -> None:
    store, clock = incident_store(), FakeClock(autojump=True)
    hooks = Tarpit()
    for n in range(10):
        store.add_subscriber(f"https://n{n}.attacker.test/h", kind=SubscriberKind.WEBHOOK)
        hooks.addresses[f"n{n}.attacker.test"] = "198.51.100.7"
    sender = sender_for(store, FakeMail(), hooks, clock)

    await sender.run_once(NOW)
    await sender.drain()
    # One lane: two sends in flight for the ten names, not ten.
    assert sum(hooks.calls.values()) == sending.PER_HOST

    await clock.advance(1)
    await sender.run_once(NOW + 5)
    await sender.drain()
    await clock.advance(1)
    third = await sender.run_once(NOW + 10)

    # One breaker: opened by its third timeout, it refuses the remaining names without a try.
    assert sum(hooks.calls.values()) == 2 * sending.PER_HOST
    assert third.retrying == 6 and third.left == 0
    refused = [d for d in store.deliveries.values() if d.error == UNAVAILABLE]
    assert len(refused) >= 6  # (a send in flight when it opened may be cut short with them)
    assert [key for key in sender._guards if key.startswith("webhook:")] == ["webhook:198.51.100.7"]
