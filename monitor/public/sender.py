"""The background sender: what subscribers are owed, delivered by e-mail and webhook.

Run by the leading monitor every few seconds (the daemon's ``public-sender`` job), never from a
request. A round (:meth:`PublicSender.run_once`):

1. ``fan_out``: queued public messages become one pending delivery per subscriber they concern;
2. the due deliveries are sent, MESSAGES FIRST: batches of at most ``per_round`` deliveries
   carrying a message, repeated while a batch came full and :data:`ROUND_DEADLINE` allows; the
   first batch also takes at most :data:`CONFIRMATIONS_PER_ROUND` confirmation requests, queued
   behind the messages — so however many requests strangers make, what subscribers are told
   goes first and a backlog still drains (e-mails reuse the round's SMTP connections);
3. each send goes through the breaker of its destination — the SMTP server (three tries, then
   refused at once while open), or a webhook's checked ADDRESS (one try of at most
   :data:`WEBHOOK_DEADLINE`: the delivery's backoff does the retrying). E-mails and webhooks
   have slots of their own (:data:`~monitor.public.mail.SESSIONS`, ``concurrency``), and one
   address at most :data:`PER_HOST` sends in flight: a tarpit, under however many names, holds
   two webhook slots for five seconds, and never an e-mail;
4. each outcome is recorded at once (``finish_delivery``): ``SENT``; ``PENDING`` again with a
   later ``next_at`` (backoff doubling from :data:`RETRY_BASE` to :data:`RETRY_MAX`); or
   ``FAILED`` — after :data:`MAX_ATTEMPTS` attempts or :data:`GIVE_UP_AFTER`, at once for a send
   that can never succeed (a webhook to a private address or port, a recipient the server
   rejected), and as ``unsubscribed`` for a subscriber gone before its delivery went out.

At the round's deadline the sends not started are dropped (still pending, due next round) and
those under way are left to finish and record themselves; until then they are "in flight" and
no round reads them again, so nothing is sent twice by this monitor. Delivery is at least
once: a monitor stopped between a send and its record sends it again; the e-mail's
``Message-ID`` and the webhook's ``Idempotency-Key`` are the delivery's, the same on every
send. Logs never hold a subscriber's full address, a URL's path or query, nor the key.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from monitor.notices import Guarded
from monitor.public.drafting import Draft, Drafter, Drop, MailPort, Round, Send, WebhookPort
from monitor.public.mail import DESTINATION, SESSIONS, Mailer
from monitor.public.outcomes import UNAVAILABLE, Refused, SendError
from monitor.public.settings import PublicSettings
from monitor.public.webhooks import WebhookPoster
from monitor.store.errors import LeaseLost, StoreError
from monitor.store.models import Component, Incident
from monitor.store.public_models import (
    Delivery,
    DeliveryState,
    Maintenance,
    PublicMessage,
    Subscriber,
    private_keys,
)
from shared.resilience import CircuitBreaker, CircuitBreakerConfig, CircuitBreakerOpenError, Clock

logger = logging.getLogger("monitor.public")

SEND_EVERY = 5.0
"""Seconds between two rounds."""
SCHEDULE: dict[str, Any] = {
    "seconds": SEND_EVERY,
    "max_instances": 1,  # a slow round is never run twice at once
    "coalesce": True,
    "misfire_grace_time": round(SEND_EVERY),
}
"""The daemon's ``public-sender`` job (APScheduler's interval trigger)."""
ROUND_DEADLINE = 4.0
"""Seconds a round goes on starting sends; it waits for none beyond it."""
PER_ROUND = 50
"""Deliveries carrying a message in one batch (a round runs batches until its deadline)."""
CONFIRMATIONS_PER_ROUND = 10
"""Confirmation requests one round sends at most, after the messages of its first batch."""
FAN_OUT_PER_ROUND = 100
CONCURRENCY = 4
"""Webhook sends in flight at once (e-mails have their own, :data:`mail.SESSIONS`)."""
PER_HOST = 2
"""Sends to one webhook address in flight at once."""
WEBHOOK_DEADLINE = 5.0
"""One webhook try, connecting and answering included."""
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
    async def due_deliveries(
        self, *, now: float, limit: int = 100, confirmations: bool | None = None
    ) -> list[Delivery]: ...


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


@dataclass(slots=True)
class SendReport:
    fanned_out: int = 0
    """Public messages turned into deliveries this round."""
    due: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    """Given up on (after retries, at once for good, or the subscriber gone)."""
    left: int = 0
    """Sends still under way at the round's deadline (they record themselves when done)."""


class OneTry:
    """A webhook address's guard: a single try of at most :data:`WEBHOOK_DEADLINE` inside a
    breaker of its own (three failures: refused at once for a minute)."""

    def __init__(self, name: str, *, clock: Clock) -> None:
        config = CircuitBreakerConfig(
            failure_threshold=3, recovery_timeout=60.0, timeout=WEBHOOK_DEADLINE
        )
        self._breaker = CircuitBreaker(name, config, clock=clock)

    async def send(self, attempt: Callable[[None], Awaitable[None]], notice: None) -> None:
        await self._breaker.call(attempt, notice)


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
        confirmations_per_round: int = CONFIRMATIONS_PER_ROUND,
        concurrency: int = CONCURRENCY,
        round_deadline: float = ROUND_DEADLINE,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.clock = clock
        self.mail = mail
        self.webhooks = webhooks
        self.drafter = Drafter(settings, secret=secret, mail=mail, webhooks=webhooks)
        self.per_round = per_round
        self.confirmations_per_round = confirmations_per_round
        self.round_deadline = round_deadline
        smtp = settings.smtp
        self.timeout = smtp.timeout if smtp is not None else 10.0
        self._guards: OrderedDict[str, Guarded | OneTry] = OrderedDict()
        # Kept across rounds, like the breakers: a send left running at a round's deadline
        # still holds its slot and its lane in the next round.
        self._slots = {DESTINATION: asyncio.Semaphore(SESSIONS)}
        self._hook_slots = asyncio.Semaphore(concurrency)
        self._lanes: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._unrecorded: set[int] = set()

    def guard(self, destination: str) -> Guarded | OneTry:
        """The breaker of one destination, kept across rounds (that is its point)."""
        guard = self._guards.get(destination)
        if guard is None:
            name = f"subscribers {destination}"
            guard = (
                Guarded(name, timeout=self.timeout, clock=self.clock)
                if destination == DESTINATION
                else OneTry(name, clock=self.clock)
            )
            self._guards[destination] = guard
            while len(self._guards) > MAX_BREAKERS:
                self._guards.popitem(last=False)
        self._guards.move_to_end(destination)
        return guard

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def drain(self) -> None:
        """Wait for the sends left running by past rounds (tests; a clean stop)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

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
        started = self.clock.monotonic()
        deadline = started + self.round_deadline
        report = SendReport()
        report.fanned_out = await self.writer.fan_out(now, limit=FAN_OUT_PER_ROUND)
        self._unrecorded = set()  # a delivery whose record failed is not sent again this round
        round_: Round | None = None
        asks = self.confirmations_per_round
        try:
            while True:
                at = now if round_ is None else now + (self.clock.monotonic() - started)
                due = await self._due(at, confirmations=False, limit=self.per_round)
                more = len(due) == self.per_round
                due += await self._due(at, confirmations=True, limit=asks)
                asks = 0
                report.due += len(due)
                if not due:
                    break
                if round_ is None:
                    components = await self.reader.components()
                    names = {(c.target, c.service): c.display_name for c in components}
                    round_ = Round(self.reader, names, private_keys(components))
                done = await self._batch(due, round_, at, report, deadline)
                if not (done and more and self.clock.monotonic() < deadline):
                    break
        finally:
            if self.mail is not None:
                await self.mail.aclose()  # the idle connections; a straggler's goes next round
            if self.webhooks is not None and not self._in_flight:
                await self.webhooks.aclose()
        report.left = len(self._in_flight)
        return report

    async def _due(self, now: float, *, confirmations: bool, limit: int) -> list[Delivery]:
        """Due deliveries, those in flight (or sent, unrecorded) left out: read a few more."""
        if limit <= 0:
            return []
        skip = self._unrecorded | self._in_flight.keys()
        found = await self.reader.due_deliveries(
            now=now, limit=limit + len(skip), confirmations=confirmations
        )
        return [d for d in found if d.id not in skip][:limit]

    async def _batch(
        self, due: list[Delivery], round_: Round, now: float, report: SendReport, deadline: float
    ) -> bool:
        """Send ``due`` (in its order) until ``deadline``; True when every send ended in time."""
        tasks: list[asyncio.Task[None]] = []
        begun: set[int] = set()
        for delivery in due:
            draft = await self.drafter.draft(delivery, round_, now)
            if isinstance(draft, Drop):
                await self._finish(draft.delivery, now, report, error=draft.error, final=True)
                continue
            task = asyncio.create_task(self._one(draft, now, report, begun))
            self._in_flight[delivery.id] = task
            task.add_done_callback(partial(self._landed, delivery.id))
            tasks.append(task)
        try:
            complete = await self._wait(tasks, deadline)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        dropped = [
            task
            for delivery_id, task in self._in_flight.items()
            if task in tasks and not task.done() and delivery_id not in begun
        ]
        for task in dropped:
            task.cancel()  # not begun: nothing went out, so it is simply due next round
        await asyncio.gather(*dropped, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled():
                error = task.exception()
                if isinstance(error, LeaseLost) or (
                    error is not None and not isinstance(error, Exception)
                ):
                    raise error
        return complete

    async def _wait(self, tasks: list[asyncio.Task[None]], deadline: float) -> bool:
        """Wait for ``tasks`` until ``deadline`` on the injected clock; True if all ended."""
        pending = {t for t in tasks if not t.done()}
        while pending:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return False
            timer = asyncio.ensure_future(self.clock.sleep(left))
            try:
                await asyncio.wait([*pending, timer], return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
            pending = {t for t in pending if not t.done()}
        return True

    def _landed(self, delivery_id: int, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery_id, None)
        if task.cancelled():
            return
        error = task.exception()  # retrieved: a straggler's is logged here, never lost
        if error is not None and not isinstance(error, LeaseLost):
            logger.error(
                "a delivery's send or record failed unexpectedly (%s)",
                type(error).__name__,
                extra={"event": "public_send_error"},
            )

    async def _one(self, draft: Draft, now: float, report: SendReport, begun: set[int]) -> None:
        error: str | None
        try:
            destination, send = await draft.start()
        except SendError as failure:
            error, final = failure.kind, isinstance(failure, Refused) and failure.final
        else:
            slots = self._slots.get(destination, self._hook_slots)
            width = SESSIONS if destination == DESTINATION else PER_HOST
            lane, users = self._lanes.setdefault(destination, (asyncio.Semaphore(width), [0]))
            users[0] += 1
            try:
                # The lane first, then a slot: sends queued behind a slow address hold no slot.
                async with lane, slots:
                    begun.add(draft.delivery.id)
                    error, final = await self._send(draft.delivery, destination, send)
            finally:
                users[0] -= 1
                if not users[0]:
                    self._lanes.pop(destination, None)
        await self._finish(draft.delivery, now, report, error=error, final=final, draft=draft)

    async def _send(
        self, delivery: Delivery, destination: str, send: Send
    ) -> tuple[str | None, bool]:
        """(error, final) of one send through its destination's guard; (None, False): sent."""
        refused: list[Refused] = []

        async def attempt(_: None) -> None:
            try:
                await send()
            except Refused as error:
                # The destination answered: this send's refusal is not the host's failure, so
                # the breaker sees a success and the retry does not repeat it.
                refused.append(error)

        try:
            await self.guard(destination).send(attempt, None)
        except CircuitBreakerOpenError:
            return UNAVAILABLE, False
        except SendError as error:
            return error.kind, False
        except TimeoutError:
            return "timeout", False
        except Exception as error:  # never the message: a library's text may hold the address
            logger.warning(
                "subscriber delivery %d failed unexpectedly (%s)",
                delivery.id,
                type(error).__name__,
                extra={"event": "public_send_error", "delivery": delivery.id},
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
        draft: Draft | None = None,
    ) -> None:
        attempts = delivery.attempts + 1
        shown = draft.shown if draft is not None else f"subscriber {delivery.subscriber_id}"
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
            self._unrecorded.add(delivery.id)
            logger.exception(
                "could not record delivery %d", delivery.id, extra={"event": "store_error"}
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
        WebhookPoster(
            timeout=min(timeout, WEBHOOK_DEADLINE), allow_private=chosen.allow_private_webhooks
        )
        if chosen.webhooks
        else None
    )
    return PublicSender(
        settings, reader, writer, clock=clock, mail=mail, webhooks=hooks, secret=secret
    )
