"""What each delivery says, and to whom: a due delivery becomes a :class:`Draft` (ready to send)
or a :class:`Drop` (never to be sent: the subscriber is gone, the request lapsed…).

Part of the sender (:mod:`monitor.public.sender`), which reads the deliveries, sends the drafts
and records the outcomes. A webhook's destination is only known once its URL is resolved and
checked, so a draft's :attr:`Draft.start` does that first and gives back the destination (the
key of its lane and breaker) with the send itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.public import messages, payloads
from monitor.public.mail import DESTINATION, Email, mask_address, message_id
from monitor.public.outcomes import EXPIRED, NOT_CONFIGURED, UNSUBSCRIBED
from monitor.public.settings import PublicSettings
from monitor.public.tokens import CONFIRM, UNSUBSCRIBE, mint
from monitor.public.webhooks import Target, masked
from monitor.store.models import Incident
from monitor.store.public_models import (
    Delivery,
    Maintenance,
    PrivateKeys,
    PublicMessage,
    Subscriber,
    SubscriberKind,
    public_incident,
    public_window,
)

Send = Callable[[], Awaitable[None]]


class DraftReads(Protocol):
    async def subscriber(self, subscriber_id: int) -> Subscriber | None: ...
    async def public_message(self, message_id: int) -> PublicMessage | None: ...
    async def incident(self, incident_id: int) -> Incident | None: ...
    async def maintenance(self, maintenance_id: int) -> Maintenance | None: ...


class MailPort(Protocol):
    async def send(self, email: Email) -> None: ...
    async def aclose(self) -> None: ...


class WebhookPort(Protocol):
    async def resolve(self, url: str) -> Target: ...
    async def send(
        self, target: Target, payload: Mapping[str, Any], *, key: str | None = None
    ) -> None: ...
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Draft:
    delivery: Delivery
    start: Callable[[], Awaitable[tuple[str, Send]]]
    """(destination, send): the destination is ``smtp``, or a webhook's checked address."""
    shown: str
    """The destination as logs may show it (masked)."""


@dataclass(frozen=True, slots=True)
class Drop:
    delivery: Delivery
    error: str


class Round:
    """What one round reads once: the catalogue's names and each message's subject."""

    def __init__(
        self,
        reader: DraftReads,
        names: Mapping[tuple[str, str], str],
        private: PrivateKeys = frozenset(),
    ) -> None:
        self.reader = reader
        self.names = names
        self.private = private
        """Private checks' keys: a message names none of them (the page shows none)."""
        self._messages: dict[int, tuple[PublicMessage | None, Incident | None, Maintenance | None]]
        self._messages = {}

    async def message(
        self, message_id: int
    ) -> tuple[PublicMessage | None, Incident | None, Maintenance | None]:
        found = self._messages.get(message_id)
        if found is None:
            message = await self.reader.public_message(message_id)
            incident = window = None
            # Told as the page shows it: without private components, and not at all when none
            # of its components is public (no subject: the delivery is dropped).
            if message is not None and message.incident_id is not None:
                incident = await self.reader.incident(message.incident_id)
                incident = incident and public_incident(incident, self.private)
            elif message is not None and message.maintenance_id is not None:
                window = await self.reader.maintenance(message.maintenance_id)
                window = window and public_window(window, self.private)
            found = self._messages[message_id] = (message, incident, window)
        return found


class Drafter:
    def __init__(
        self,
        settings: PublicSettings,
        *,
        secret: bytes,
        mail: MailPort | None,
        webhooks: WebhookPort | None,
    ) -> None:
        self.settings = settings
        self._secret = secret
        self.mail = mail
        self.webhooks = webhooks

    def _links(self, subscriber: Subscriber) -> str:
        token = mint(self._secret, UNSUBSCRIBE, subscriber.id, subscriber.address)
        return f"{self.settings.page.url}/subscriptions/unsubscribe?token={token}"

    async def draft(self, delivery: Delivery, round_: Round, now: float) -> Draft | Drop:
        subscriber = await round_.reader.subscriber(delivery.subscriber_id)
        if subscriber is None or subscriber.unsubscribed_at is not None:
            return Drop(delivery, UNSUBSCRIBED)
        page = self.settings.page
        if delivery.message_id is None:
            if subscriber.confirmed_at is not None:
                return Drop(delivery, "already confirmed")
            expires_at = delivery.created_at + self.settings.subscriptions.confirm_within
            if now >= expires_at:
                return Drop(delivery, EXPIRED)
            token = mint(
                self._secret, CONFIRM, subscriber.id, subscriber.address, expires_at=expires_at
            )
            confirm_url = f"{page.url}/subscriptions/confirm?token={token}"
            if subscriber.kind is SubscriberKind.EMAIL:
                rendered = messages.confirmation_email(
                    page,
                    subscriber.language,
                    confirm_url,
                    expires_at,
                    subscriber.components,
                    round_.names,
                )
                return self._email(delivery, subscriber, rendered, None, now)
            payload = payloads.confirmation_payload(page, confirm_url, expires_at, now)
            return self._webhook(delivery, subscriber, payload)
        if not subscriber.active:
            return Drop(delivery, UNSUBSCRIBED)
        message, incident, window = await round_.message(delivery.message_id)
        if message is None or (incident is None and window is None):
            return Drop(delivery, "gone")
        unsubscribe = self._links(subscriber)
        ctx = messages.Context(page, subscriber.language, round_.names, unsubscribe, now)
        if subscriber.kind is SubscriberKind.EMAIL:
            rendered_email = messages.render_email(ctx, message, incident, window)
            if rendered_email is None:
                return Drop(delivery, "gone")
            return self._email(delivery, subscriber, rendered_email, unsubscribe, now)
        document = payloads.render_payload(ctx, message, incident, window)
        if document is None:
            return Drop(delivery, "gone")
        return self._webhook(delivery, subscriber, document)

    def _email(
        self,
        delivery: Delivery,
        subscriber: Subscriber,
        rendered: messages.Rendered,
        unsubscribe: str | None,
        now: float,
    ) -> Draft | Drop:
        mail, smtp = self.mail, self.settings.smtp
        if mail is None or smtp is None:
            return Drop(delivery, NOT_CONFIGURED)
        email = Email(
            to=subscriber.address,
            subject=rendered.subject,
            text=rendered.text,
            language=subscriber.language,
            message_id=message_id(delivery.id, smtp.sender),
            unsubscribe_url=unsubscribe,
            at=now,
        )

        async def start() -> tuple[str, Send]:
            return DESTINATION, lambda: mail.send(email)

        return Draft(delivery, start, mask_address(subscriber.address))

    def _webhook(
        self, delivery: Delivery, subscriber: Subscriber, payload: Mapping[str, Any]
    ) -> Draft | Drop:
        hooks = self.webhooks
        if hooks is None:
            return Drop(delivery, NOT_CONFIGURED)
        url = subscriber.address
        key = f"questcity-delivery-{delivery.id}"

        async def start() -> tuple[str, Send]:
            # Resolved and checked before the send takes a lane: the lane and the breaker are
            # the ADDRESS's, so a thousand names pointed at one tarpit share one of each.
            target = await hooks.resolve(url)
            return target.destination, lambda: hooks.send(target, payload, key=key)

        return Draft(delivery, start, masked(url))
