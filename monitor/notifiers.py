"""Where alerts go: the log, and JSON webhooks.

A webhook is sent in the background through the policy library (retry with backoff inside a
circuit breaker per receiver), so a dead or slow receiver can never stall the checks.
"""

from __future__ import annotations

import logging
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
            extra={"event": "alert", **asdict(notice)},
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
                self._url, json=asdict(notice), timeout=self._timeout
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

    def dispatch(self, notice: AlertNotice) -> None:
        for sink in self._sinks:
            self._tasks.spawn(self._send(sink, notice))

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
