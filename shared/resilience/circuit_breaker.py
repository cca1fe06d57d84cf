"""The circuit breaker: stop calling a dependency that is failing, and find out when it is back.

States (:class:`CircuitState`):

- ``CLOSED``: calls pass. ``failure_threshold`` consecutive failures (or, when configured, a failure
  or slow-call rate over a sliding window of the last calls) open the breaker.
- ``OPEN``: calls are refused at once with :class:`CircuitBreakerOpenError`, whose ``retry_after``
  says when the next trial may run. When timeouts open it, the calls still waiting are cut short
  with the same error rather than left to wait out their own timeouts. After ``recovery_timeout``
  the breaker turns ``HALF_OPEN``.
- ``HALF_OPEN``: at most ``half_open_max_calls`` trial calls run at a time; ``success_threshold``
  successes close the breaker, any failure opens it again.

What counts: an exception matching ``failure_on`` (default: any ``Exception``) is a failure, unless
it matches ``ignore_on`` (business errors: not found, conflict), which is neither failure nor
success. The breaker's own ``timeout`` is a failure. Cancellation from outside is neither, but still
gives back a trial permit. A call that started under an earlier state (before a transition, a
``reset()`` or ``force_open()``) is counted in the metrics but does not move the new state.

Inside a request's deadline (:mod:`shared.resilience.request_deadline`) each call is cut to what is
left of it, and a call that finds it spent is not started (:class:`RequestDeadlineError`, not
counted). A call the request's deadline cuts short is a timeout (a failure) when it was given long
enough to answer: at least :data:`ANSWER_WITHIN` seconds, or the whole ``timeout`` when that is
shorter. A dependency that stopped answering then still opens its breaker when requests' budgets
are shorter than its ``timeout``. A call given less says more about the request than about the
dependency: it counts as cancelled.

Everything runs on the event loop's thread, so state changes need no lock, and none is held while
the protected call runs. Time is read from an injected monotonic clock.

What runs around the breaker (a retry) composes with it through :meth:`CircuitBreaker.call_path`
(see :mod:`shared.resilience.compose`); this module knows nothing of retries. It is longer than
the house's ~500 lines on purpose: the hot call path and the state machine share the breaker's
private state, and keeping them in one class is what keeps a call in one frame.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any, ParamSpec, Protocol, TypeVar

from shared.resilience.clock import SYSTEM_CLOCK, Clock
from shared.resilience.deadline import (
    DeadlineWatch,
    as_coroutine,
    no_outside_cancellation,
    resolution_for,
)
from shared.resilience.errors import CallTimeoutError, CircuitBreakerOpenError, RequestDeadlineError
from shared.resilience.matching import ExceptionMatcher, as_predicate
from shared.resilience.request_deadline import current_deadline

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("shared.resilience.circuit_breaker")


# A refused call in HALF_OPEN waits for the trial in flight; this is the hint given to clients.
_HALF_OPEN_RETRY_AFTER = 1.0

ANSWER_WITHIN = 1.0
"""Seconds a healthy dependency needs at most to answer a call (they answer in milliseconds): a
call the request's deadline cut short after this long is the dependency's timeout."""


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    failure_threshold: int = 5
    """Consecutive failures in CLOSED that open the breaker."""
    recovery_timeout: float = 30.0
    """Seconds in OPEN before trial calls are let through."""
    success_threshold: int = 1
    """Successful trials in HALF_OPEN that close the breaker."""
    timeout: float | None = 10.0
    """Bound on each call in seconds (a timed-out call is a failure); None for none."""
    half_open_max_calls: int = 1
    """Trial calls allowed in flight at once in HALF_OPEN."""
    failure_on: ExceptionMatcher = Exception
    ignore_on: ExceptionMatcher = ()
    failure_rate_threshold: float | None = None
    """Open when this fraction (0–1] of the calls in the sliding window failed; None for off."""
    slow_call_duration: float | None = None
    """A call taking longer than this many seconds is slow; None for off."""
    slow_call_rate_threshold: float = 1.0
    """Open when this fraction (0–1] of the calls in the window were slow."""
    sliding_window_size: int = 100
    """How many of the latest calls the rates are computed over."""
    minimum_calls: int = 10
    """Rates are not judged before the window holds this many calls (or is full)."""

    def __post_init__(self) -> None:
        _positive_int("failure_threshold", self.failure_threshold)
        _positive_int("success_threshold", self.success_threshold)
        _positive_int("half_open_max_calls", self.half_open_max_calls)
        _positive_int("sliding_window_size", self.sliding_window_size)
        _positive_int("minimum_calls", self.minimum_calls)
        if not self.recovery_timeout >= 0:
            raise ValueError(
                f"CircuitBreakerConfig.recovery_timeout must be >= 0, got {self.recovery_timeout!r}"
            )
        for label, value in (
            ("timeout", self.timeout),
            ("slow_call_duration", self.slow_call_duration),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"CircuitBreakerConfig.{label} must be > 0 or None, got {value!r}")
        for label, rate in (
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ):
            if rate is not None and not 0 < rate <= 1:
                raise ValueError(f"CircuitBreakerConfig.{label} must be in (0, 1], got {rate!r}")
        as_predicate("CircuitBreakerConfig.failure_on", self.failure_on)
        as_predicate("CircuitBreakerConfig.ignore_on", self.ignore_on)

    @property
    def windowed(self) -> bool:
        return self.failure_rate_threshold is not None or self.slow_call_duration is not None


def _positive_int(label: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"CircuitBreakerConfig.{label} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class StateChange:
    """A transition, as told to listeners."""

    name: str
    old: CircuitState
    new: CircuitState
    reason: str
    at: float
    """Wall-clock time of the transition (seconds since the epoch)."""


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    name: str
    state: CircuitState
    forced_open: bool
    total_calls: int
    """Calls made through the breaker, refused ones included."""
    successful_calls: int
    failed_calls: int
    """Failures, timeouts included."""
    timed_out_calls: int
    rejected_calls: int
    ignored_calls: int
    cancelled_calls: int
    slow_calls: int
    failure_rate: float
    """Failed / (failed + successful), over the sliding window when one is configured."""
    consecutive_failures: int
    state_transitions: int
    last_transition_at: float | None
    """Wall-clock time of the last transition, None before the first."""
    retry_after: float | None
    """Seconds until the next trial call when OPEN, else None."""
    half_open_in_flight: int

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state.value,
            "forced_open": self.forced_open,
            "total_calls": self.total_calls,
            "successful_calls": self.successful_calls,
            "failed_calls": self.failed_calls,
            "timed_out_calls": self.timed_out_calls,
            "rejected_calls": self.rejected_calls,
            "ignored_calls": self.ignored_calls,
            "cancelled_calls": self.cancelled_calls,
            "slow_calls": self.slow_calls,
            "failure_rate": round(self.failure_rate, 4),
            "consecutive_failures": self.consecutive_failures,
            "state_transitions": self.state_transitions,
            "last_transition_at": self.last_transition_at,
            "retry_after": None if self.retry_after is None else round(self.retry_after, 3),
            "half_open_in_flight": self.half_open_in_flight,
        }


StateListener = Callable[[StateChange], None]


class BreakerCall(Protocol):
    """``await path(fn, *args, **kwargs)``: a call path through a breaker (and what it composes)."""

    def __call__(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]: ...


class FailureHandler(Protocol):
    """What a composed call path does with a call that failed in the breaker (see
    :meth:`CircuitBreaker.call_path`): return the call's result after all (a retry), or raise.

    ``started`` is when the failed call started, on the breaker's clock, or None when the breaker
    did not read the clock for it (no timeout and no deadline to keep).
    """

    def __call__(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: Exception,
        started: float | None,
    ) -> Awaitable[T]: ...


class CallCounter(Protocol):
    """Counts the calls made through a path (a retry budget's ``calls``: retries are allowed in
    proportion to them)."""

    calls: int


@dataclass(slots=True)
class _Window:
    """The outcomes of the last ``size`` calls, with running counts (O(1) per call)."""

    size: int
    outcomes: list[int] = field(default_factory=list)
    position: int = 0
    failures: int = 0
    slow: int = 0

    FAILED = 1
    SLOW = 2

    def record(self, outcome: int) -> None:
        if len(self.outcomes) < self.size:
            self.outcomes.append(outcome)
        else:
            old = self.outcomes[self.position]
            self.failures -= old & self.FAILED
            self.slow -= (old & self.SLOW) >> 1
            self.outcomes[self.position] = outcome
            self.position = (self.position + 1) % self.size
        self.failures += outcome & self.FAILED
        self.slow += (outcome & self.SLOW) >> 1

    def clear(self) -> None:
        self.outcomes.clear()
        self.position = self.failures = self.slow = 0


class CircuitBreaker:
    """A named circuit breaker. Use :meth:`call`, or the :func:`circuit_breaker` decorator."""

    def __init__(
        self, name: str, config: CircuitBreakerConfig | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.name = name
        self.config = config if config is not None else CircuitBreakerConfig()
        self._clock = clock
        self._now = clock.monotonic
        self._is_failure = as_predicate("failure_on", self.config.failure_on)
        self._is_ignored = as_predicate("ignore_on", self.config.ignore_on)
        self._timeout = self.config.timeout or 0.0
        # Without a timeout of its own the breaker still cuts calls made inside a request.
        self._watch = DeadlineWatch(clock, resolution_for(self._timeout or math.inf))
        self._answer_within = min(self._timeout or math.inf, ANSWER_WITHIN)
        self._window = _Window(self.config.sliding_window_size) if self.config.windowed else None
        self._listeners: list[StateListener] = []

        self._state = CircuitState.CLOSED
        self._generation = 0
        self._forced = False
        self._opened_at = -math.inf
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._half_open_in_flight = 0

        self._successes = 0
        self._failures = 0
        self._timeouts = 0
        self._rejected = 0
        self._ignored = 0
        self._cancelled = 0
        self._slow = 0
        self._transitions = 0
        self._last_transition_at: float | None = None

        self.call: BreakerCall = self.call_path()
        """``await breaker.call(fn, *args, **kwargs)``: run ``fn`` under the breaker; raises
        :class:`CircuitBreakerOpenError` when refused."""

    # -- the call path --------------------------------------------------------------------------

    def call_path(
        self, *, on_failure: FailureHandler | None = None, count: CallCounter | None = None
    ) -> BreakerCall:
        """A call path through this breaker, for composing it with what runs around it.

        ``path(fn, *args, **kwargs)`` runs ``fn`` exactly as :attr:`call` does (:attr:`call` is
        ``call_path()``), and besides:

        - each call adds one to ``count.calls`` when ``count`` is given;
        - a call that fails once admitted (its error, timeout included, already counted by the
          breaker) is handed to ``on_failure(fn, args, kwargs, error, started)`` when given, and
          the call's outcome is what that returns or raises. A call refused before it starts is
          not handed on (an open breaker's :class:`CircuitBreakerOpenError`, a spent request
          deadline's :class:`RequestDeadlineError`), nor is cancellation from outside.

        This is the hot path: every query and every S3 call runs through it. It is a closure
        rather than a method so that its constants are cell loads and no bound method is made per
        call, and the deadline watch's bookkeeping is inlined (two dict operations). Composing
        through ``on_failure`` rather than around the path keeps a retried call's first attempt
        in this one frame (:mod:`shared.resilience.compose`).
        """
        breaker = self
        closed = CircuitState.CLOSED
        guarded = self._call_guarded
        watch = self._watch
        monotonic = self._now

        async def guarded_handing_on(
            fn: Callable[P, Awaitable[T]], args: tuple[Any, ...], kwargs: dict[str, Any], now: float
        ) -> T:
            """:meth:`_call_guarded`, with a failure handed to ``on_failure``."""
            assert on_failure is not None
            try:
                return await guarded(fn, args, kwargs, now)
            except RequestDeadlineError as exc:
                if exc.timeout == 0.0:
                    raise  # not started: nothing to hand on
                error: Exception = exc
            except Exception as exc:
                error = exc
            return await on_failure(fn, args, kwargs, error, now)

        # HALF_OPEN, OPEN and windowed breakers take the guarded path (admission, permits, slow
        # calls); without a handler it runs in the path's own frame, as a refusal then does.
        guarded_path = guarded if on_failure is None else guarded_handing_on

        if not self._timeout:

            async def call_unbounded(
                fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
            ) -> T:
                if count is not None:
                    count.calls += 1
                if (
                    breaker._state is not closed
                    or breaker._window is not None
                    or current_deadline() != math.inf
                ):
                    now = monotonic()
                    breaker._admit(now)
                    return await guarded_path(fn, args, kwargs, now)
                generation = breaker._generation
                try:
                    result = await fn(*args, **kwargs)
                except asyncio.CancelledError:
                    breaker._cancelled += 1
                    raise
                except Exception as exc:
                    breaker._record_error(exc, generation)
                    if on_failure is None:
                        raise
                    error = exc
                else:
                    breaker._successes += 1
                    if breaker._consecutive_failures and generation == breaker._generation:
                        breaker._consecutive_failures = 0
                    return result
                return await on_failure(fn, args, kwargs, error, None)

            return call_unbounded

        entries = watch.entries
        request_deadline = current_deadline
        timeout = self._timeout

        async def call(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
            if count is not None:
                count.calls += 1
            if breaker._state is not closed or breaker._window is not None:
                now = monotonic()
                breaker._admit(now)
                return await guarded_path(fn, args, kwargs, now)
            generation = breaker._generation
            fired = False
            now = monotonic()
            deadline = now + timeout
            limit = request_deadline()
            if limit < deadline:
                if limit <= now:
                    raise RequestDeadlineError(breaker.name, 0.0)
                deadline = limit
            try:
                awaitable = fn(*args, **kwargs)
                if type(awaitable) is not CoroutineType:
                    awaitable = as_coroutine(awaitable)
                entries[awaitable] = deadline
                if now > watch.tick_due:
                    watch.arm(now)
                try:
                    result = await awaitable
                finally:
                    del entries[awaitable]
                    fired = bool(watch.fired) and watch.take_fired(awaitable)
            except asyncio.CancelledError:
                if not (fired and no_outside_cancellation()):
                    breaker._cancelled += 1
                    raise
                error: Exception = breaker._cut_short(
                    generation, deadline - now if deadline < now + timeout else None
                )
                if on_failure is None:
                    raise error from None
            except Exception as exc:
                breaker._record_error(exc, generation)
                if on_failure is None:
                    raise
                error = exc
            else:
                breaker._successes += 1
                if breaker._consecutive_failures and generation == breaker._generation:
                    breaker._consecutive_failures = 0
                return result
            return await on_failure(fn, args, kwargs, error, now)

        return call

    async def _call_guarded(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[object, ...],
        kwargs: dict[str, object],
        now: float,
    ) -> T:
        """The path for HALF_OPEN and windowed breakers, once :meth:`_admit` let the call in:
        permits, timing, slow calls."""
        deadline = now + self._timeout if self._timeout else math.inf
        limit = current_deadline()
        by_request = limit < deadline
        if by_request:
            if limit <= now:
                raise RequestDeadlineError(self.name, 0.0)
            deadline = limit
        generation = self._generation
        trial = self._state is CircuitState.HALF_OPEN
        if trial:
            self._half_open_in_flight += 1
        watch = self._watch
        fired = False
        try:
            call = fn(*args, **kwargs)
            if deadline == math.inf:
                result = await call
            else:
                call = as_coroutine(call)
                watch.watch(call, deadline, now)
                try:
                    result = await call
                finally:
                    fired = watch.release(call)
        except asyncio.CancelledError:
            if fired and no_outside_cancellation():
                raise self._cut_short(generation, deadline - now if by_request else None) from None
            self._cancelled += 1
            raise
        except Exception as exc:
            self._record_error(exc, generation)
            raise
        finally:
            if trial and generation == self._generation:
                self._half_open_in_flight -= 1
        slow_after = self.config.slow_call_duration
        slow = slow_after is not None and self._now() - now > slow_after
        self._record_success(generation, slow)
        return result

    def _admit(self, now: float) -> None:
        state = self._state
        if state is CircuitState.OPEN:
            if self._forced or now < self._opened_at + self.config.recovery_timeout:
                self._reject(self._retry_after(now))
            self._transition(CircuitState.HALF_OPEN, "recovery timeout elapsed")
            state = CircuitState.HALF_OPEN
        if state is CircuitState.HALF_OPEN and (
            self._half_open_in_flight >= self.config.half_open_max_calls
        ):
            self._reject(_HALF_OPEN_RETRY_AFTER)

    def _reject(self, retry_after: float) -> None:
        self._rejected += 1
        raise CircuitBreakerOpenError(self.name, retry_after, self._state.value)

    def _retry_after(self, now: float) -> float:
        if self._forced:
            return self.config.recovery_timeout
        return max(self._opened_at + self.config.recovery_timeout - now, 0.0)

    # -- outcomes -------------------------------------------------------------------------------

    def _record_error(self, exc: Exception, generation: int) -> None:
        if self._is_ignored(exc) or not self._is_failure(exc):
            self._ignored += 1
            return
        self._record_failure(generation, f"{type(exc).__name__}")

    def _cut_short(self, generation: int, given: float | None = None) -> Exception:
        """What a call the watch cancelled raises: refused when the breaker opened while it was
        waiting (see :meth:`_open`), else its own timeout, which is a failure, or, when the
        request's deadline cut it after ``given`` seconds, :class:`RequestDeadlineError`."""
        if self._state is CircuitState.OPEN and generation != self._generation:
            self._rejected += 1
            return CircuitBreakerOpenError(self.name, self._retry_after(self._now()), "open")
        if given is None:
            return self._record_timeout(generation)
        if given >= self._answer_within:
            self._timeouts += 1
            self._record_failure(generation, "timeout")
        else:
            self._cancelled += 1
        return RequestDeadlineError(self.name, given)

    def _record_timeout(self, generation: int) -> CallTimeoutError:
        self._timeouts += 1
        self._record_failure(generation, "timeout")
        return CallTimeoutError(self.name, self.config.timeout or 0.0)

    def _record_failure(self, generation: int, cause: str) -> None:
        self._failures += 1
        if generation != self._generation:
            return
        window = self._window
        if window is not None:
            window.record(_Window.FAILED)
        state = self._state
        timed_out = cause == "timeout"
        if state is CircuitState.HALF_OPEN:
            self._open(f"trial call failed ({cause})", cut_short=timed_out)
            return
        if state is not CircuitState.CLOSED:
            return
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.config.failure_threshold:
            self._open(
                f"{self._consecutive_failures} consecutive failures (last: {cause})",
                cut_short=timed_out,
            )
        elif window is not None:
            self._judge_window()

    def _record_success(self, generation: int, slow: bool) -> None:
        self._successes += 1
        if slow:
            self._slow += 1
        if generation != self._generation:
            return
        if self._window is not None:
            self._window.record(_Window.SLOW if slow else 0)
        if self._state is CircuitState.HALF_OPEN:
            if slow:
                self._open("trial call was slow")
                return
            self._half_open_successes += 1
            if self._half_open_successes >= self.config.success_threshold:
                self._transition(CircuitState.CLOSED, "trial calls succeeded")
            return
        self._consecutive_failures = 0
        # A success can be the call that fills the window to minimum_calls: judge it too.
        self._judge_window()

    def _judge_window(self) -> None:
        window = self._window
        config = self.config
        # As in resilience4j, a window smaller than minimum_calls is judged once it is full.
        needed = min(config.minimum_calls, config.sliding_window_size)
        if window is None or len(window.outcomes) < needed:
            return
        calls = len(window.outcomes)
        if config.failure_rate_threshold is not None and (
            window.failures / calls >= config.failure_rate_threshold
        ):
            self._open(f"failure rate {window.failures / calls:.0%} over the last {calls} calls")
        elif config.slow_call_duration is not None and (
            window.slow / calls >= config.slow_call_rate_threshold
        ):
            self._open(f"slow-call rate {window.slow / calls:.0%} over the last {calls} calls")

    # -- transitions ----------------------------------------------------------------------------

    def _open(self, reason: str, *, cut_short: bool = False) -> None:
        self._opened_at = self._now()
        self._transition(CircuitState.OPEN, reason)
        # Timeouts opened it: the calls still waiting on the same dependency are most likely stuck
        # too and would only wait out their own timeouts; refuse them now, as a call arriving now
        # would be. (Opened by fast errors, calls in flight may well succeed: they run on.)
        if cut_short and self._watch.entries:
            self._watch.cancel_all()

    def _transition(self, new: CircuitState, reason: str) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._consecutive_failures = 0
        self._half_open_successes = 0
        self._half_open_in_flight = 0
        if self._window is not None:
            self._window.clear()
        if old is new:
            return
        self._transitions += 1
        change = StateChange(self.name, old, new, reason, self._clock.wall())
        self._last_transition_at = change.at
        _log_transition(change)
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                logger.exception("circuit breaker listener %r failed", listener)

    # -- operator actions and inspection --------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state; an OPEN breaker whose recovery timeout passed reads HALF_OPEN."""
        if (
            self._state is CircuitState.OPEN
            and not self._forced
            and self._now() >= self._opened_at + self.config.recovery_timeout
        ):
            self._transition(CircuitState.HALF_OPEN, "recovery timeout elapsed")
        return self._state

    def reset(self, reason: str = "manual reset") -> None:
        """Close the breaker now (an operator's decision); calls in flight no longer move it."""
        self._forced = False
        self._opened_at = -math.inf
        self._transition(CircuitState.CLOSED, reason)

    def force_open(self, reason: str = "forced open") -> None:
        """Open the breaker and keep it open (no trials) until :meth:`reset`."""
        self._forced = True
        self._open(reason)

    def add_listener(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        self._listeners.remove(listener)

    @property
    def metrics(self) -> BreakerMetrics:
        state = self.state
        window = self._window
        if window is not None:
            judged = len(window.outcomes)
            failure_rate = window.failures / judged if judged else 0.0
        else:
            judged = self._successes + self._failures
            failure_rate = self._failures / judged if judged else 0.0
        admitted = self._successes + self._failures + self._ignored + self._cancelled
        return BreakerMetrics(
            name=self.name,
            state=state,
            forced_open=self._forced,
            total_calls=admitted + self._rejected,
            successful_calls=self._successes,
            failed_calls=self._failures,
            timed_out_calls=self._timeouts,
            rejected_calls=self._rejected,
            ignored_calls=self._ignored,
            cancelled_calls=self._cancelled,
            slow_calls=self._slow,
            failure_rate=failure_rate,
            consecutive_failures=self._consecutive_failures,
            state_transitions=self._transitions,
            last_transition_at=self._last_transition_at,
            retry_after=self._retry_after(self._now()) if state is CircuitState.OPEN else None,
            half_open_in_flight=self._half_open_in_flight,
        )

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state.value})"


def _log_transition(change: StateChange) -> None:
    level = logging.WARNING if change.new is CircuitState.OPEN else logging.INFO
    logger.log(
        level,
        "circuit breaker %s: %s -> %s (%s)",
        change.name,
        change.old.value,
        change.new.value,
        change.reason,
        extra={
            "event": "breaker_transition",
            "breaker": change.name,
            "from_state": change.old.value,
            "to_state": change.new.value,
            "reason": change.reason,
        },
    )
