"""The background sender: what subscribers are owed, delivered by e-mail and webhook.

Run by the leading monitor every few seconds (the daemon's ``public-sender`` job), never from a
request. A round (:meth:`PublicSender.run_once`):

1. ``fan_out``: queued public messages become one pending delivery per subscriber they concern;
2. the due deliveries, at most ``per_round``, are sent at most ``concurrency`` at a time. Each
   goes through :class:`monitor.notices.Guarded` of its destination — one for the SMTP server,
   one per webhook host — so a dead host is retried a little, then refused at once by its open
   breaker, and never waited on by the e-mails or the other hosts (each host also has at most
   :data:`PER_HOST` sends in flight, so it cannot take every slot of a round);
3. each outcome is recorded at once (``finish_delivery``): ``SENT``; ``PENDING`` again with a
   later ``next_at`` (backoff doubling from :data:`RETRY_BASE` to :data:`RETRY_MAX`); or
   ``FAILED`` — after :data:`MAX_ATTEMPTS` attempts or :data:`GIVE_UP_AFTER`, at once for a send
   that can never succeed (a webhook to a private address, a recipient the server rejected), and
   as ``unsubscribed`` for a subscriber gone or unsubscribed before its delivery went out.

Delivery is at least once: a monitor stopped between a send and its record sends it again; the
e-mail's ``Message-ID`` and the webhook's ``Idempotency-Key`` are the delivery's, the same on
every send. Logs never hold a subscriber's full address, a URL's path or query, nor the key.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.notices import Guarded
from monitor.public import messages, payloads
from monitor.public.mail import Email, Mailer, mask_address, message_id
from monitor.public.outcomes import (
    EXPIRED,
    NOT_CONFIGURED,
    UNAVAILABLE,
    UNSUBSCRIBED,
    Refused,
    SendError,
)
from monitor.public.settings import PublicSettings
from monitor.public.tokens import CONFIRM, UNSUBSCRIBE, mint
from monitor.public.webhooks import WebhookPoster, masked
from monitor.store.errors import LeaseLost, StoreError
from monitor.store.models import Component, Incident
from monitor.store.public_models import (
    Delivery,
    DeliveryState,
    Maintenance,
    PublicMessage,
    Subscriber,
    SubscriberKind,
)
from shared.resilience import CircuitBreakerOpenError, Clock

logger = logging.getLogger("monitor.public")

SEND_EVERY = 5.0
"""Seconds between two rounds."""
SCHEDULE: dict[str, Any] = {
    "seconds": SEND_EVERY,
    "max_instances": 1,  # a slow round (a dead host's timeouts) is never run twice at once
    "coalesce": True,
    "misfire_grace_time": round(SEND_EVERY),
}
"""The daemon's ``public-sender`` job (APScheduler's interval trigger)."""
PER_ROUND = 50
"""Deliveries one round takes on at most (the rest wait for the next, seconds later)."""
FAN_OUT_PER_ROUND = 100
CONCURRENCY = 4
PER_HOST = 2
"""Sends to one webhook host in flight at once (the SMTP server may take them all)."""
RETRY_BASE = 30.0
RETRY_MAX = 3600.0
MAX_ATTEMPTS = 20
GIVE_UP_AFTER = 86400.0
"""A delivery still failing a day after it was queued is given up on: old news is no news."""
MAX_BREAKERS = 1000
"""Destinations whose breakers are kept; the least recently used beyond it is forgotten."""


class SenderReads(Protocol):
    async def components(self) -> list[Component]: ...
    async def subscriber(self, subscriber_id: int) -> Subscriber | None: ...
    async def public_message(self, message_id: int) -> PublicMessage | None: ...
    async def incident(self, incident_id: int) -> Incident | None: ...
    async def maintenance(self, maintenance_id: int) -> Maintenance | None: ...
    async def due_deliveries(self, *, now: float, limit: int = 100) -> list[Delivery]: ...


class SenderWrites(Protocol):
    async def fan_out(self, now: float, *, limit: int = 100) -> int: ...
    async def finish_delivery(
        self,
        delivery_id: int,
        state: DeliveryState,
        at: float,
        *,
        error: str | None = None,
        next_at: float | None = None,
    ) -> None: ...


class MailPort(Protocol):
    async def send(self, email: Email) -> None: ...


class WebhookPort(Protocol):
    def destination(self, url: str) -> str: ...
    async def post(
        self, url: str, payload: Mapping[str, Any], *, key: str | None = None
    ) -> None: ...
    async def aclose(self) -> None: ...


@dataclass(slots=True)
class SendReport:
    fanned_out: int = 0
    """Public messages turned into deliveries this round."""
    due: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    """Given up on (after retries, at once for good, or the subscriber gone)."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    delivery: Delivery
    destination: str
    send: Callable[[], Awaitable[None]]
    shown: str
    """The destination as logs may show it (masked)."""


@dataclass(frozen=True, slots=True)
class _Drop:
    delivery: Delivery
    error: str


class _Round:
    """What one round reads once: the catalogue's names and each message's subject."""

    def __init__(self, reader: SenderReads, names: Mapping[tuple[str, str], str]) -> None:
        self.reader = reader
        self.names = names
        self._messages: dict[int, tuple[PublicMessage | None, Incident | None, Maintenance | None]]
        self._messages = {}

    async def message(
        self, message_id: int
    ) -> tuple[PublicMessage | None, Incident | None, Maintenance | None]:
        found = self._messages.get(message_id)
        if found is None:
            message = await self.reader.public_message(message_id)
            incident = window = None
            if message is not None and message.incident_id is not None:
                incident = await self.reader.incident(message.incident_id)
            elif message is not None and message.maintenance_id is not None:
                window = await self.reader.maintenance(message.maintenance_id)
            found = self._messages[message_id] = (message, incident, window)
        return found


class PublicSender:
    def __init__(
        self,
        settings: PublicSettings,
        reader: SenderReads,
        writer: SenderWrites,
        *,
        clock: Clock,
        mail: MailPort | None,
        webhooks: WebhookPort | None,
        secret: bytes,
        per_round: int = PER_ROUND,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.clock = clock
        self.mail = mail
        self.webhooks = webhooks
        self._secret = secret
        self.per_round = per_round
        self.concurrency = concurrency
        smtp = settings.smtp
        self.timeout = smtp.timeout if smtp is not None else 10.0
        self._guards: OrderedDict[str, Guarded] = OrderedDict()

    def guard(self, destination: str) -> Guarded:
        """The retry-and-breaker of one destination, kept across rounds (that is its point)."""
        guard = self._guards.get(destination)
        if guard is None:
            guard = Guarded(f"subscribers {destination}", timeout=self.timeout, clock=self.clock)
            self._guards[destination] = guard
            while len(self._guards) > MAX_BREAKERS:
                self._guards.popitem(last=False)
        self._guards.move_to_end(destination)
        return guard

    async def tick(self) -> SendReport | None:
        """A round now (the daemon's job): a store that fails is logged (the next round tries
        again); ``LeaseLost`` is raised for the daemon to stop."""
        try:
            return await self.run_once(self.clock.wall())
        except LeaseLost:
            raise
        except StoreError as error:
            logger.warning(
                "the subscribers' sender could not use the store (%s)",
                type(error).__name__,
                extra={"event": "store_error"},
            )
            return None

    async def run_once(self, now: float) -> SendReport:
        """One round (see the module's docstring). Raises ``LeaseLost`` when this monitor no
        longer leads (nothing more is sent); other store errors end the round, logged."""
        report = SendReport()
        report.fanned_out = await self.writer.fan_out(now, limit=FAN_OUT_PER_ROUND)
        due = await self.reader.due_deliveries(now=now, limit=self.per_round)
        report.due = len(due)
        if not due:
            return report
        names = {(c.target, c.service): c.display_name for c in await self.reader.components()}
        round_ = _Round(self.reader, names)
        prepared: list[_Prepared] = []
        for delivery in due:
            outcome = await self._prepare(delivery, round_, now)
            if isinstance(outcome, _Drop):
                await self._finish(outcome.delivery, now, report, error=outcome.error, final=True)
            else:
                prepared.append(outcome)
        try:
            await self._send_all(prepared, now, report)
        finally:
            if self.webhooks is not None:
                await self.webhooks.aclose()
        return report

    async def _send_all(self, prepared: list[_Prepared], now: float, report: SendReport) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        lanes: dict[str, asyncio.Semaphore] = {}
        for item in prepared:
            if item.destination not in lanes:
                width = self.concurrency if item.destination == "smtp" else PER_HOST
                lanes[item.destination] = asyncio.Semaphore(width)

        async def one(item: _Prepared) -> None:
            # The host's lane first, then a slot: sends queued behind a slow host hold no slot.
            async with lanes[item.destination], slots:
                error, final = await self._send(item)
            await self._finish(item.delivery, now, report, error=error, final=final, item=item)

        results = await asyncio.gather(*(one(item) for item in prepared), return_exceptions=True)
        for result in results:
            if isinstance(result, LeaseLost) or (
                isinstance(result, BaseException) and not isinstance(result, Exception)
            ):
                raise result
        for result in results:
            if isinstance(result, Exception):
                logger.error(
                    "a delivery's send or record failed unexpectedly (%s)",
                    type(result).__name__,
                    extra={"event": "public_send_error"},
                )

    async def _send(self, item: _Prepared) -> tuple[str | None, bool]:
        """(error, final) of one send through its destination's guard; (None, False): sent."""
        refused: list[Refused] = []

        async def attempt(_: _Prepared) -> None:
            try:
                await item.send()
            except Refused as error:
                # The destination answered: this send's refusal is not the host's failure, so
                # the breaker sees a success and the retry does not repeat it.
                refused.append(error)

        try:
            await self.guard(item.destination).send(attempt, item)
        except CircuitBreakerOpenError:
            return UNAVAILABLE, False
        except SendError as error:
            return error.kind, False
        except TimeoutError:
            return "timeout", False
        except Exception as error:  # never the message: a library's text may hold the address
            logger.warning(
                "subscriber delivery %d failed unexpectedly (%s)",
                item.delivery.id,
                type(error).__name__,
                extra={"event": "public_send_error", "delivery": item.delivery.id},
            )
            return "failed", False
        if refused:
            return refused[0].kind, refused[0].final
        return None, False

    async def _finish(
        self,
        delivery: Delivery,
        now: float,
        report: SendReport,
        *,
        error: str | None,
        final: bool,
        item: _Prepared | None = None,
    ) -> None:
        attempts = delivery.attempts + 1
        shown = item.shown if item is not None else f"subscriber {delivery.subscriber_id}"
        fields = {"delivery": delivery.id, "subscriber": delivery.subscriber_id}
        if error is None:
            state, next_at = DeliveryState.SENT, None
            report.sent += 1
            logger.info(
                "sent delivery %d to %s",
                delivery.id,
                shown,
                extra={"event": "public_sent", **fields},
            )
        elif final or attempts >= MAX_ATTEMPTS or now - delivery.created_at >= GIVE_UP_AFTER:
            state, next_at = DeliveryState.FAILED, None
            report.failed += 1
            logger.warning(
                "gave up on delivery %d to %s after %d attempt(s): %s",
                delivery.id,
                shown,
                attempts,
                error,
                extra={"event": "public_failed", "error": error, **fields},
            )
        else:
            state, next_at = DeliveryState.PENDING, now + backoff(attempts)
            report.retrying += 1
            logger.info(
                "delivery %d to %s failed (%s); attempt %d, next in %.0f s",
                delivery.id,
                shown,
                error,
                attempts,
                next_at - now,
                extra={"event": "public_retry", "error": error, **fields},
            )
        try:
            await self.writer.finish_delivery(delivery.id, state, now, error=error, next_at=next_at)
        except LeaseLost:
            raise
        except StoreError:
            logger.exception(
                "could not record delivery %d", delivery.id, extra={"event": "store_error"}
            )

    # -- what each delivery says, and to whom ------------------------------------------------

    def _links(self, subscriber: Subscriber) -> str:
        token = mint(self._secret, UNSUBSCRIBE, subscriber.id, subscriber.address)
        return f"{self.settings.page.url}/subscriptions/unsubscribe?token={token}"

    async def _prepare(self, delivery: Delivery, round_: _Round, now: float) -> _Prepared | _Drop:
        subscriber = await self.reader.subscriber(delivery.subscriber_id)
        if subscriber is None or subscriber.unsubscribed_at is not None:
            return _Drop(delivery, UNSUBSCRIBED)
        page = self.settings.page
        if delivery.message_id is None:
            if subscriber.confirmed_at is not None:
                return _Drop(delivery, "already confirmed")
            expires_at = delivery.created_at + self.settings.subscriptions.confirm_within
            if now >= expires_at:
                return _Drop(delivery, EXPIRED)
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
            return _Drop(delivery, UNSUBSCRIBED)
        message, incident, window = await round_.message(delivery.message_id)
        if message is None or (incident is None and window is None):
            return _Drop(delivery, "gone")
        unsubscribe = self._links(subscriber)
        ctx = messages.Context(page, subscriber.language, round_.names, unsubscribe, now)
        if subscriber.kind is SubscriberKind.EMAIL:
            rendered_email = messages.render_email(ctx, message, incident, window)
            if rendered_email is None:
                return _Drop(delivery, "gone")
            return self._email(delivery, subscriber, rendered_email, unsubscribe, now)
        document = payloads.render_payload(ctx, message, incident, window)
        if document is None:
            return _Drop(delivery, "gone")
        return self._webhook(delivery, subscriber, document)

    def _email(
        self,
        delivery: Delivery,
        subscriber: Subscriber,
        rendered: messages.Rendered,
        unsubscribe: str | None,
        now: float,
    ) -> _Prepared | _Drop:
        mail, smtp = self.mail, self.settings.smtp
        if mail is None or smtp is None:
            return _Drop(delivery, NOT_CONFIGURED)
        email = Email(
            to=subscriber.address,
            subject=rendered.subject,
            text=rendered.text,
            language=subscriber.language,
            message_id=message_id(delivery.id, smtp.sender),
            unsubscribe_url=unsubscribe,
            at=now,
        )
        return _Prepared(
            delivery, "smtp", lambda: mail.send(email), mask_address(subscriber.address)
        )

    def _webhook(
        self, delivery: Delivery, subscriber: Subscriber, payload: Mapping[str, Any]
    ) -> _Prepared | _Drop:
        hooks = self.webhooks
        if hooks is None:
            return _Drop(delivery, NOT_CONFIGURED)
        url = subscriber.address
        key = f"questcity-delivery-{delivery.id}"
        return _Prepared(
            delivery,
            hooks.destination(url),
            lambda: hooks.post(url, payload, key=key),
            masked(url),
        )


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 30 s doubling, at most 1 h."""
    return min(RETRY_BASE * 2.0 ** min(attempts - 1, 20), RETRY_MAX)


def build_sender(
    settings: PublicSettings,
    reader: SenderReads,
    writer: SenderWrites,
    *,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
) -> PublicSender | None:
    """The daemon's sender, or None when subscriptions are off (or cannot work: no key)."""
    chosen = settings.subscriptions
    if not chosen.enabled:
        return None
    secret = chosen.secret(environ)
    if secret is None:
        logger.warning(
            "subscriptions are on but %s holds no key of at least 32 characters: nothing is "
            "sent to subscribers",
            chosen.secret_env,
            extra={"event": "public_sender_off"},
        )
        return None
    smtp = settings.smtp
    mail = (
        Mailer(smtp, password=smtp.password(environ), sender_name=f"{settings.page.name} status")
        if smtp is not None and chosen.email
        else None
    )
    timeout = smtp.timeout if smtp is not None else 10.0
    hooks = (
        WebhookPoster(timeout=timeout, allow_private=chosen.allow_private_webhooks)
        if chosen.webhooks
        else None
    )
    return PublicSender(
        settings, reader, writer, clock=clock, mail=mail, webhooks=hooks, secret=secret
    )
