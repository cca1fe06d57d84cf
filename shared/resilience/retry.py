"""Retry with exponential backoff and jitter.

:class:`RetryPolicy` runs calls under a :class:`RetryConfig`; ``retry_with_backoff(config)``
(:mod:`shared.resilience.decorators`) is the decorator form. Every call keeps its own attempt
counter and deadline (never shared between concurrent callers); a policy's
:class:`~shared.resilience.budget.RetryBudget` is shared by all of them.

What is never retried, whatever ``retry_on`` says: cancellation (a ``BaseException``, it passes
straight through), :class:`CircuitBreakerOpenError` (the breaker already decided),
:class:`RetryDeadlineError` and :class:`RequestDeadlineError`. The default ``retry_on`` is
connection and timeout errors only.

Inside a request's deadline (:mod:`shared.resilience.request_deadline`) the overall deadline is the
earlier of the policy's own and the request's: waits and attempts are cut to what is left of it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

from shared.resilience import _switches
from shared.resilience.backoff import Jitter, next_delay
from shared.resilience.budget import RetryBudget, RetryBudgetConfig
from shared.resilience.clock import SYSTEM_CLOCK, Clock
from shared.resilience.deadline import (
    DeadlineWatch,
    as_coroutine,
    no_outside_cancellation,
    resolution_for,
)
from shared.resilience.errors import (
    CallTimeoutError,
    CircuitBreakerOpenError,
    RequestDeadlineError,
    RetryDeadlineError,
)
from shared.resilience.matching import ExceptionMatcher, as_predicate
from shared.resilience.request_deadline import current_deadline

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("shared.resilience.retry")


DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
"""Connection and timeout errors: the failures a repeat can cure. Never "every exception"."""

GiveUpReason = Literal["attempts_exhausted", "deadline", "request_deadline", "budget_exhausted"]
"""``deadline`` is the policy's own ``timeout``; ``request_deadline`` the request's budget."""


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """What a hook is told about a failed attempt: one frozen value per event."""

    name: str
    attempt: int
    """The attempt that just failed (1 for the first call)."""
    max_attempts: int
    cause: BaseException
    elapsed: float
    """Seconds since the call started."""
    wait: float
    """Seconds until the next attempt; 0.0 when giving up."""
    gave_up: GiveUpReason | None = None
    """Why there is no next attempt, or None when there is one."""


RetryHook = Callable[[RetryDetails], None]


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How a policy retries. Validated on creation: a bad value is an error here, not at 3 a.m."""

    max_attempts: int = 3
    """Attempts in all, the first call included."""
    base_delay: float = 0.5
    max_delay: float = 10.0
    """Caps every single wait (before a ``retry_after`` from the error itself)."""
    timeout: float | None = 30.0
    """Overall deadline in seconds for all attempts and waits together; None for none."""
    jitter: Jitter = Jitter.FULL
    retry_on: ExceptionMatcher = DEFAULT_RETRY_ON
    """Exception types, or a predicate on the exception, that make an attempt worth repeating."""
    attempt_timeout: float | None = None
    """Bound on each single attempt; a timed-out attempt raises ``CallTimeoutError``."""
    budget: RetryBudgetConfig | None = None
    """Shared by every caller of the policy's name; None for no budget."""
    name: str | None = None
    """The policy's name in logs, metrics and the budget registry (default: the function's)."""
    hooks: tuple[RetryHook, ...] = field(default=())
    """Called with a :class:`RetryDetails` on every retry and every give-up."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryConfig.max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryConfig.base_delay and max_delay must be >= 0")
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"RetryConfig.max_delay ({self.max_delay!r}) must be >= base_delay "
                f"({self.base_delay!r})"
            )
        for label, value in (("timeout", self.timeout), ("attempt_timeout", self.attempt_timeout)):
            if value is not None and not value > 0:
                raise ValueError(f"RetryConfig.{label} must be > 0 or None, got {value!r}")
        object.__setattr__(self, "jitter", Jitter(self.jitter))
        as_predicate("RetryConfig.retry_on", self.retry_on)


def _never_retried(exc: BaseException) -> bool:
    return isinstance(exc, CircuitBreakerOpenError | RetryDeadlineError | RequestDeadlineError)


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


class RetryPolicy:
    """A configured retry policy. Safe to share between concurrent callers."""

    __slots__ = ("_bounded", "_budget", "_clock", "_retryable", "_rng", "_watch", "config", "name")

    def __init__(
        self,
        config: RetryConfig,
        *,
        name: str,
        clock: Clock = SYSTEM_CLOCK,
        budget: RetryBudget | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self._clock = clock
        self._budget = budget
        self._rng = rng if rng is not None else random.Random()
        self._retryable = as_predicate("RetryConfig.retry_on", config.retry_on)
        bound = min(t for t in (config.timeout, config.attempt_timeout, math.inf) if t is not None)
        self._bounded = math.isfinite(bound)
        # An unbounded policy still needs a watch for the attempts it makes inside a request.
        self._watch = DeadlineWatch(clock, resolution_for(bound))

    @property
    def budget(self) -> RetryBudget | None:
        return self._budget

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._budget is not None:
            self._budget.calls += 1
        limit = current_deadline()
        if not self._bounded and limit == math.inf:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                if _never_retried(exc) or not self._retryable(exc):
                    raise
                return await self._retry(fn, args, kwargs, exc, None)
        now = self._clock.monotonic()
        try:
            return await self._attempt(fn, args, kwargs, now, now, limit)
        except Exception as exc:
            if _never_retried(exc) or not self._retryable(exc):
                raise
            return await self._retry(fn, args, kwargs, exc, now)

    async def _attempt(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: float,
        now: float,
        limit: float,
    ) -> T:
        """One attempt under the watch: bounded by the attempt timeout and the overall deadline,
        which is the earlier of the policy's and the request's (``limit``)."""
        config = self.config
        watch = self._watch
        deadline = started + config.timeout if config.timeout is not None else math.inf
        by_request = limit < deadline
        if by_request:
            if limit <= now:
                raise RequestDeadlineError(self.name, 0.0)
            deadline = limit
        attempt_deadline = (
            min(deadline, now + config.attempt_timeout)
            if config.attempt_timeout is not None
            else deadline
        )
        call = as_coroutine(fn(*args, **kwargs))
        watch.watch(call, attempt_deadline, now)
        fired = False
        try:
            try:
                return await call
            finally:
                fired = watch.release(call)
        except asyncio.CancelledError:
            if not (fired and no_outside_cancellation()):
                raise
            if attempt_deadline < deadline and config.attempt_timeout is not None:
                raise CallTimeoutError(self.name, config.attempt_timeout) from None
            if by_request:
                raise RequestDeadlineError(self.name, deadline - now) from None
            raise RetryDeadlineError(self.name, deadline - started) from None

    async def retry_after_failure(
        self,
        fn: Callable[P, Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: Exception,
        started: float | None,
    ) -> T:
        """Carry on from a first attempt that failed with ``error``, made by the caller itself
        (:func:`shared.resilience.compose.call_path`): the overall deadline counts from
        ``started`` (from now when None). Raises ``error`` when it is not worth retrying."""
        if _never_retried(error) or not self._retryable(error):
            raise error
        return await self._retry(fn, args, kwargs, error, started)

    async def _retry(
        self,
        fn: Callable[P, Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        first_error: Exception,
        started: float | None,
    ) -> T:
        config = self.config
        clock = self._clock
        if started is None:
            started = clock.monotonic()
        deadline = started + config.timeout if config.timeout is not None else math.inf
        limit = current_deadline()
        by_request = limit < deadline
        if by_request:
            deadline = limit
        error: Exception = first_error
        attempt = 1
        wait = config.base_delay
        unwatched = not self._bounded and limit == math.inf
        while True:
            wait = self._plan_wait(error, attempt, wait, started, deadline, by_request)
            await clock.sleep(0.0 if _switches.waits_disabled else wait)
            attempt += 1
            try:
                if unwatched:
                    return await fn(*args, **kwargs)
                return await self._attempt(fn, args, kwargs, started, clock.monotonic(), limit)
            except Exception as exc:
                if _never_retried(exc) or not self._retryable(exc):
                    raise
                error = exc

    def _plan_wait(
        self,
        error: Exception,
        attempt: int,
        previous: float,
        started: float,
        deadline: float,
        by_request: bool,
    ) -> float:
        """The wait before the next attempt; raises ``error`` when there should be none."""
        config = self.config
        elapsed = self._clock.monotonic() - started
        if attempt >= config.max_attempts:
            self._give_up(error, attempt, elapsed, "attempts_exhausted")
        wait = next_delay(
            config.jitter,
            base_delay=config.base_delay,
            max_delay=config.max_delay,
            retry_number=attempt,
            previous=previous,
            rng=self._rng,
        )
        server_wait = _retry_after(error)
        if server_wait is not None:
            wait = max(wait, server_wait)
        # A wait that would reach the deadline is cut to nothing: give up now with the real
        # error instead of sleeping into a deadline and failing with a timeout.
        if started + elapsed + wait >= deadline:
            self._give_up(error, attempt, elapsed, "request_deadline" if by_request else "deadline")
        if self._budget is not None and not self._budget.try_spend():
            self._give_up(error, attempt, elapsed, "budget_exhausted")
        self._emit(RetryDetails(self.name, attempt, config.max_attempts, error, elapsed, wait))
        return wait

    def _give_up(
        self, error: Exception, attempt: int, elapsed: float, reason: GiveUpReason
    ) -> None:
        details = RetryDetails(
            self.name, attempt, self.config.max_attempts, error, elapsed, 0.0, gave_up=reason
        )
        self._emit(details)
        error.add_note(
            f"{self.name}: gave up after {attempt} attempt(s) in {elapsed:.3f} s ({reason})"
        )
        raise error

    def _emit(self, details: RetryDetails) -> None:
        _log(details)
        for hook in self.config.hooks:
            try:
                hook(details)
            except Exception:
                logger.exception("retry hook %r failed", hook)


def _log(details: RetryDetails) -> None:
    fields = {
        "event": "retry" if details.gave_up is None else "retry_gave_up",
        "policy": details.name,
        "attempt": details.attempt,
        "max_attempts": details.max_attempts,
        "wait": round(details.wait, 6),
        "elapsed": round(details.elapsed, 6),
        "cause": type(details.cause).__name__,
    }
    if details.gave_up is None:
        logger.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.3f s",
            details.name,
            details.attempt,
            details.max_attempts,
            fields["cause"],
            details.wait,
            extra=fields,
        )
    else:
        fields["reason"] = details.gave_up
        logger.warning(
            "%s: giving up after attempt %d of %d (%s): %s",
            details.name,
            details.attempt,
            details.max_attempts,
            fields["cause"],
            details.gave_up,
            extra=fields,
        )
