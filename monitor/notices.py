"""What an alert notice is and how one reaches a receiver: :class:`AlertNotice`, the
:class:`AlertSink` protocol every sink keeps, and :class:`Guarded` (retry inside a breaker).

Its own module, below both :mod:`monitor.notifiers` (the log and webhook sinks, the dispatcher,
``build_sinks``) and :mod:`monitor.apprise_sink`, so that ``build_sinks`` may construct an Apprise
sink without the two importing each other. :mod:`monitor.notifiers` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shared.resilience import (
    SYSTEM_CLOCK,
    CircuitBreaker,
    CircuitBreakerConfig,
    Clock,
    RetryConfig,
    RetryPolicy,
)

N = TypeVar("N")
"""What :meth:`Guarded.send` hands its attempt: an alert notice, or a subscriber's delivery."""


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


class AlertSink(Protocol):
    async def send(self, notice: AlertNotice) -> None: ...


class Guarded:
    """How a notice reaches one receiver (a webhook, one Apprise URL): up to three attempts with
    backoff inside a circuit breaker of its own, so a dead receiver is given up on quickly and
    then refused at once for a minute, never waited on by the next notices."""

    def __init__(self, name: str, *, timeout: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self._breaker = CircuitBreaker(
            name,
            CircuitBreakerConfig(failure_threshold=3, recovery_timeout=60.0, timeout=timeout * 2),
            clock=clock,
        )
        self._retry = RetryPolicy(
            RetryConfig(max_attempts=3, base_delay=1.0, max_delay=10.0, timeout=60.0),
            name=name,
            clock=clock,
        )

    async def send(self, attempt: Callable[[N], Awaitable[None]], notice: N) -> None:
        """``attempt(notice)`` until it returns; a ``ConnectionError`` or ``TimeoutError`` from
        it is retried, anything else (and the last failure) is raised."""
        await self._retry.call(self._breaker.call, attempt, notice)
