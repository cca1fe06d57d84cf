"""Where alerts go: the log, and JSON webhooks.

A webhook is sent in the background through the policy library (retry with backoff inside a
circuit breaker per receiver), so a dead or slow receiver can never stall the checks.

Delivery is at least once. The store keeps an outbox (``alerts.notified``): a notice is marked
handled once every sink took it or gave up on it, and a monitor that resumes (a new leader after
a takeover, or a restart) sends again every notice not marked. A monitor killed between the
delivery and the mark therefore has its successor send that notice a second time — rarely, but
a receiver must expect it: each notice carries a stable idempotency key, ``"id": "<alert
id>:<state>"`` in the JSON body and the ``Idempotency-Key`` header, the same on every send of
that notice, by which a receiver drops a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import httpx

from monitor.config import Notifier
from shared.resilience import (
    SYSTEM_CLOCK,
    CircuitBreaker,
    CircuitBreakerConfig,
    Clock,
    RetryConfig,
    RetryPolicy,
)
from shared.resilience.background import BackgroundTasks

logger = logging.getLogger("monitor.alerts")


@dataclass(frozen=True, slots=True)
class AlertNotice:
    rule: str
    target: str
    service: str
    state: str  # "firing" or "resolved"
    summary: str
    at: float
    alert_id: int | None = None
    """The stored alert's id (None only for a notice of no stored alert)."""
    component: str = ""
    """The component key (DESIGN §3): ``TARGET`` or ``TARGET/SERVICE``."""
    name: str = ""
    """The component's display name ("QuestCity API / Photos and avatars")."""
    reminder: int = 0
    """0 for the firing or resolved notice itself; n for the n-th reminder of a firing alert."""

    @property
    def key(self) -> str:
        """The idempotency key: the same on every send of this notice, by any monitor."""
        base = (
            str(self.alert_id)
            if self.alert_id is not None
            else f"{self.rule}:{self.target}:{self.service}:{self.at:.3f}"
        )
        suffix = f":reminder:{self.reminder}" if self.reminder else ""
        return f"{base}:{self.state}{suffix}"

    def payload(self) -> dict[str, object]:
        """The webhook's JSON body."""
        return {
            "id": self.key,
            "rule": self.rule,
            "target": self.target,
            "service": self.service,
            "state": self.state,
            "component": self.component,
            "name": self.name,
            "reminder": self.reminder,
            "summary": self.summary,
            "at": self.at,
        }


Done = Callable[["AlertNotice"], Awaitable[None]]
"""Called once a notice is handled: every sink delivered it or gave up on it."""


class AlertSink(Protocol):
    async def send(self, notice: AlertNotice) -> None: ...


class LogSink:
    async def send(self, notice: AlertNotice) -> None:
        level = logging.WARNING if notice.state == "firing" else logging.INFO
        logger.log(
            level,
            "alert %s: %s",
            notice.state,
            notice.summary,
            extra={"event": "alert", "key": notice.key, **asdict(notice)},
        )


class WebhookError(ConnectionError):
    """The receiver did not take the notice (refused, timed out, or answered 5xx)."""


class WebhookSink:
    def __init__(
        self, url: str, client: httpx.AsyncClient, *, timeout: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._url = url
        self._client = client
        self._timeout = timeout
        self._breaker = CircuitBreaker(
            "webhook",
            CircuitBreakerConfig(failure_threshold=3, recovery_timeout=60.0, timeout=timeout * 2),
            clock=clock,
        )
        self._retry = RetryPolicy(
            RetryConfig(max_attempts=3, base_delay=1.0, max_delay=10.0, timeout=60.0),
            name="webhook",
            clock=clock,
        )

    async def send(self, notice: AlertNotice) -> None:
        await self._retry.call(self._breaker.call, self._post, notice)

    async def _post(self, notice: AlertNotice) -> None:
        try:
            response = await self._client.post(
                self._url,
                json=notice.payload(),
                headers={"Idempotency-Key": notice.key},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise WebhookError(type(error).__name__) from None
        if response.status_code >= 500:
            raise WebhookError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            logger.error(
                "webhook refused the alert (HTTP %d); check its URL",
                response.status_code,
                extra={"event": "webhook_refused", "status": response.status_code},
            )


class Dispatcher:
    """Sends each notice to every sink in the background; failures are logged, never raised."""

    def __init__(self, sinks: list[AlertSink]) -> None:
        self._sinks = sinks
        self._tasks = BackgroundTasks()

    def dispatch(self, notice: AlertNotice, on_done: Done | None = None) -> None:
        """Send ``notice`` to every sink at once, in the background; then, once each sink has
        delivered it or given up (its retries spent), ``on_done(notice)``. A notice cut short
        (the process killed, or cancelled at the end of :meth:`drain`) is never reported done."""
        self._tasks.spawn(self._deliver(notice, on_done))

    async def _deliver(self, notice: AlertNotice, on_done: Done | None) -> None:
        await asyncio.gather(*(self._send(sink, notice) for sink in self._sinks))
        if on_done is None:
            return
        try:
            await on_done(notice)
        except Exception as error:
            logger.warning(
                "alert notice not marked sent: %s",
                type(error).__name__,
                extra={"event": "notify_mark_failed", "rule": notice.rule},
            )

    async def _send(self, sink: AlertSink, notice: AlertNotice) -> None:
        try:
            await sink.send(notice)
        except Exception as error:
            logger.warning(
                "alert notification failed: %s",
                type(error).__name__,
                extra={
                    "event": "notify_failed",
                    "rule": notice.rule,
                    "cause": type(error).__name__,
                },
            )

    async def drain(self, grace: float = 5.0) -> None:
        await self._tasks.drain(grace)


def build_sinks(
    notifiers: tuple[Notifier, ...], client: httpx.AsyncClient, clock: Clock = SYSTEM_CLOCK
) -> list[AlertSink]:
    sinks: list[AlertSink] = []
    for notifier in notifiers:
        if notifier.kind == "webhook" and notifier.url:
            sinks.append(WebhookSink(notifier.url, client, timeout=notifier.timeout, clock=clock))
        else:
            sinks.append(LogSink())
    return sinks
