"""An in-memory store keeping the sender's side of the ports' contract (fan_out, due_deliveries,
finish_delivery, subscriber, public_message, incident, maintenance), and fake mail and webhook
destinations that fail on demand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from monitor.public.mail import Email
from monitor.public.outcomes import Refused, SendError, Unreachable
from monitor.public.webhooks import Target, destination
from monitor.store.models import Component, Incident
from monitor.store.public_models import (
    Delivery,
    DeliveryState,
    Maintenance,
    PublicMessage,
    Subscriber,
    SubscriberKind,
)

SECRET = b"s" * 40


@dataclass
class FakeStore:
    components_: list[Component] = field(default_factory=list)
    subscribers: dict[int, Subscriber] = field(default_factory=dict)
    messages: dict[int, PublicMessage] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    windows: dict[int, Maintenance] = field(default_factory=dict)
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    finished: list[tuple[int, DeliveryState, str | None, float | None]] = field(
        default_factory=list
    )

    # -- reads
    async def components(self) -> list[Component]:
        return list(self.components_)

    async def subscriber(self, subscriber_id: int) -> Subscriber | None:
        return self.subscribers.get(subscriber_id)

    async def public_message(self, message_id: int) -> PublicMessage | None:
        return self.messages.get(message_id)

    async def incident(self, incident_id: int) -> Incident | None:
        return self.incidents.get(incident_id)

    async def maintenance(self, maintenance_id: int) -> Maintenance | None:
        return self.windows.get(maintenance_id)

    async def due_deliveries(
        self, *, now: float, limit: int = 100, confirmations: bool | None = None
    ) -> list[Delivery]:
        due = [
            d
            for d in self.deliveries.values()
            if d.state is DeliveryState.PENDING
            and d.next_at <= now
            and (confirmations is None or (d.message_id is None) == confirmations)
        ]
        return sorted(due, key=lambda d: (d.next_at, d.id))[:limit]

    # -- writes
    async def fan_out(self, now: float, *, limit: int = 100) -> int:
        done = 0
        for message in list(self.messages.values()):
            if message.fanned_out_at is not None or done >= limit:
                continue
            for subscriber in self.subscribers.values():
                if subscriber.active and subscriber.follows(message.components):
                    self.add_delivery(subscriber.id, message.id, now)
            self.messages[message.id] = replace(message, fanned_out_at=now)
            done += 1
        return done

    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        at: float,
        *,
        error: str | None = None,
        next_at: float | None = None,
    ) -> None:
        old = self.deliveries[delivery_id]
        self.deliveries[delivery_id] = replace(
            old,
            state=state,
            attempts=old.attempts + 1,
            next_at=next_at if next_at is not None else old.next_at,
            done_at=None if state is DeliveryState.PENDING else at,
            error=error,
        )
        self.finished.append((delivery_id, state, error, next_at))

    # -- set-up
    def add_subscriber(
        self,
        address: str,
        *,
        kind: SubscriberKind = SubscriberKind.EMAIL,
        language: str = "en",
        confirmed: bool = True,
        components: tuple[str, ...] = (),
    ) -> Subscriber:
        number = len(self.subscribers) + 1
        subscriber = Subscriber(
            number,
            kind,
            address,
            components,
            language,
            created_at=1000.0,
            confirmed_at=1001.0 if confirmed else None,
        )
        self.subscribers[number] = subscriber
        return subscriber

    def add_delivery(self, subscriber_id: int, message_id: int | None, at: float) -> Delivery:
        for existing in self.deliveries.values():
            if (existing.subscriber_id, existing.message_id) == (subscriber_id, message_id):
                return existing
        number = len(self.deliveries) + 1
        delivery = Delivery(number, subscriber_id, message_id, DeliveryState.PENDING, 0, at, at)
        self.deliveries[number] = delivery
        return delivery


@dataclass
class FakeMail:
    sent: list[Email] = field(default_factory=list)
    fail_with: SendError | None = None
    calls: int = 0

    async def send(self, email: Email) -> None:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(email)

    async def aclose(self) -> None:
        pass


@dataclass
class FakeHooks:
    """Webhooks by URL; a host in ``down`` does not answer, one in ``refusing`` answers 4xx.
    A host resolves to ``addresses[host]`` (203.0.113.N, a different one per host, if unset)."""

    posted: list[tuple[str, Mapping[str, Any], str | None]] = field(default_factory=list)
    down: set[str] = field(default_factory=set)
    refusing: dict[str, Refused] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    closed: int = 0
    addresses: dict[str, str] = field(default_factory=dict)

    def destination(self, url: str) -> str:
        return destination(url)

    async def resolve(self, url: str) -> Target:
        host = destination(url).removeprefix("webhook:")
        if host not in self.addresses:
            self.addresses[host] = f"203.0.113.{len(self.addresses) + 1}"
        return Target(httpx.URL(url), self.addresses[host])

    async def send(
        self, target: Target, payload: Mapping[str, Any], *, key: str | None = None
    ) -> None:
        await self.post(str(target.url), payload, key=key)

    async def post(self, url: str, payload: Mapping[str, Any], *, key: str | None = None) -> None:
        host = destination(url).removeprefix("webhook:")
        self.calls[host] = self.calls.get(host, 0) + 1
        if host in self.down:
            raise Unreachable("refused")
        if host in self.refusing:
            raise self.refusing[host]
        self.posted.append((url, payload, key))

    async def aclose(self) -> None:
        self.closed += 1
