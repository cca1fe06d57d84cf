"""The breaker against a small pure reference model, under random sequences of calls, clock
advances and operator actions, on both call paths (``breaker.call`` and the fused retry path).

Calls here finish at once, so at most one is in flight: the model needs no permits. Concurrency,
timeouts and cancellation are covered by test_circuit_breaker.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from shared.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    RetryConfig,
    RetryPolicy,
)
from shared.resilience.circuit_breaker import BreakerCall
from shared.resilience.compose import call_path
from shared.resilience.testing import FakeClock

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Outcome = Literal["success", "failure", "business error"]


class NotFound(Exception):
    """A business error: neither a failure nor a success."""


async def succeed() -> str:
    return "ok"


async def fail() -> str:
    raise ConnectionError("connection refused")


async def not_found() -> str:
    raise NotFound("no such quest")


DEPENDENCY: dict[Outcome, Callable[[], Awaitable[str]]] = {
    "success": succeed,
    "failure": fail,
    "business error": not_found,
}


@dataclass
class Model:
    """What the breaker should do, as plain data: times are passed in, nothing is awaited."""

    failure_threshold: int
    success_threshold: int
    recovery_timeout: float
    state: CircuitState = CLOSED
    consecutive_failures: int = 0
    half_open_successes: int = 0
    opened_at: float = -math.inf
    forced: bool = False
    successes: int = 0
    failures: int = 0
    ignored: int = 0
    rejected: int = 0
    transitions: int = 0
    last_transition_at: float | None = None

    def observe(self, now: float, wall: float) -> None:
        """An OPEN breaker whose recovery timeout has passed is HALF_OPEN once looked at."""
        if self._trial_due(now):
            self._move(HALF_OPEN, wall)

    def call(self, outcome: Outcome, now: float, wall: float) -> bool:
        """Account for one call; False when the breaker refuses it."""
        if self.state is OPEN:
            if not self._trial_due(now):
                self.rejected += 1
                return False
            self._move(HALF_OPEN, wall)
        if outcome == "success":
            self.successes += 1
            if self.state is HALF_OPEN:
                self.half_open_successes += 1
                if self.half_open_successes >= self.success_threshold:
                    self._move(CLOSED, wall)
            else:
                self.consecutive_failures = 0
        elif outcome == "failure":
            self.failures += 1
            if self.state is HALF_OPEN:
                self._open(now, wall)
            else:
                self.consecutive_failures += 1
                if self.consecutive_failures >= self.failure_threshold:
                    self._open(now, wall)
        else:
            self.ignored += 1
        return True

    def reset(self, wall: float) -> None:
        self.forced = False
        self.opened_at = -math.inf
        self._move(CLOSED, wall)

    def force_open(self, now: float, wall: float) -> None:
        self.forced = True
        self._open(now, wall)

    def retry_after(self, now: float) -> float | None:
        if self.state is not OPEN:
            return None
        if self.forced:
            return self.recovery_timeout
        return max(self.opened_at + self.recovery_timeout - now, 0.0)

    @property
    def failure_rate(self) -> float:
        judged = self.successes + self.failures
        return self.failures / judged if judged else 0.0

    def _trial_due(self, now: float) -> bool:
        return (
            self.state is OPEN and not self.forced and now >= self.opened_at + self.recovery_timeout
        )

    def _open(self, now: float, wall: float) -> None:
        self.opened_at = now
        self._move(OPEN, wall)

    def _move(self, new: CircuitState, wall: float) -> None:
        """Every move (even to the same state) starts the counts afresh; only a change counts
        as a transition."""
        if new is not self.state:
            self.transitions += 1
            self.last_transition_at = wall
        self.state = new
        self.consecutive_failures = 0
        self.half_open_successes = 0


class BreakerMachine(RuleBasedStateMachine):
    """Drives a breaker and the model side by side; subclasses choose the call path."""

    timeouts: tuple[float | None, ...] = (10.0,)
    """The breaker timeouts to draw from."""

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = FakeClock()

    def call_path(self, breaker: CircuitBreaker) -> BreakerCall:
        raise NotImplementedError

    @initialize(
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        recovery_timeout=st.sampled_from([0.0, 1.0, 5.0, 30.0]),
        data=st.data(),
    )
    def build(
        self,
        failure_threshold: int,
        success_threshold: int,
        recovery_timeout: float,
        data: st.DataObject,
    ) -> None:
        config = CircuitBreakerConfig(
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            recovery_timeout=recovery_timeout,
            timeout=data.draw(st.sampled_from(self.timeouts), label="timeout"),
            ignore_on=NotFound,
        )
        self.breaker = CircuitBreaker("model", config, clock=self.clock)
        self.call = self.call_path(self.breaker)
        self.model = Model(failure_threshold, success_threshold, recovery_timeout)

    def teardown(self) -> None:
        self.runner.close()

    # -- rules --------------------------------------------------------------------------------

    @rule()
    def call_succeeds(self) -> None:
        self._call("success")

    @rule()
    def call_fails(self) -> None:
        self._call("failure")

    @rule()
    def call_raises_a_business_error(self) -> None:
        self._call("business error")

    @rule(seconds=st.integers(0, 80).map(lambda halves: halves / 2))
    def advance_time(self, seconds: float) -> None:
        self.runner.run(self.clock.advance(seconds))

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.model.reset(self.clock.wall())

    @rule()
    def force_open(self) -> None:
        self.breaker.force_open()
        self.model.force_open(self.clock.monotonic(), self.clock.wall())

    def _call(self, outcome: Outcome) -> None:
        now, wall = self.clock.monotonic(), self.clock.wall()
        retry_after = self.model.retry_after(now)
        admitted = self.model.call(outcome, now, wall)
        result = self.runner.run(self._result_of(DEPENDENCY[outcome]))
        if not admitted:
            assert isinstance(result, CircuitBreakerOpenError), result
            assert (result.state, result.retry_after) == ("open", retry_after)
        elif outcome == "success":
            assert result == "ok"
        elif outcome == "failure":
            assert type(result) is ConnectionError, result
        else:
            assert type(result) is NotFound, result

    async def _result_of(self, fn: Callable[[], Awaitable[str]]) -> str | Exception:
        try:
            return await self.call(fn)
        except Exception as exc:
            return exc

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def state_matches_the_model(self) -> None:
        self.model.observe(self.clock.monotonic(), self.clock.wall())
        assert self.breaker.state is self.model.state

    @invariant()
    def metrics_match_the_model(self) -> None:
        now = self.clock.monotonic()
        self.model.observe(now, self.clock.wall())
        model = self.model
        metrics = self.breaker.metrics
        assert metrics.state is model.state
        assert metrics.forced_open == model.forced
        assert metrics.total_calls == model.successes + model.failures + model.ignored + (
            model.rejected
        )
        assert metrics.successful_calls == model.successes
        assert metrics.failed_calls == model.failures
        assert metrics.ignored_calls == model.ignored
        assert metrics.rejected_calls == model.rejected
        assert (metrics.timed_out_calls, metrics.cancelled_calls) == (0, 0)
        assert metrics.consecutive_failures == model.consecutive_failures
        assert metrics.failure_rate == model.failure_rate
        assert metrics.state_transitions == model.transitions
        assert metrics.last_transition_at == model.last_transition_at
        assert metrics.retry_after == model.retry_after(now)
        assert metrics.half_open_in_flight == 0


class PlainCallMachine(BreakerMachine):
    """``breaker.call``, with and without the breaker's own timeout (two different paths)."""

    timeouts = (10.0, None)

    def call_path(self, breaker: CircuitBreaker) -> BreakerCall:
        return breaker.call


class FusedRetryCallMachine(BreakerMachine):
    """``call_path(retry=policy, breaker=breaker)`` with a bounded breaker: the first attempt runs
    in the breaker's frame. The policy allows one attempt, so a failure is given up on at once and
    reaches the caller."""

    def call_path(self, breaker: CircuitBreaker) -> BreakerCall:
        policy = RetryPolicy(
            RetryConfig(max_attempts=1, timeout=30.0), name="model", clock=self.clock
        )
        return call_path(retry=policy, breaker=breaker)


class HandedOnFailureMachine(BreakerMachine):
    """``breaker.call_path(on_failure=...)``, with and without the breaker's timeout: a handler
    that raises what it is given must leave the breaker exactly as ``breaker.call`` does."""

    timeouts = (10.0, None)

    def call_path(self, breaker: CircuitBreaker) -> BreakerCall:
        def raise_it(
            fn: Callable[..., Awaitable[T]],
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            error: Exception,
            started: float | None,
        ) -> Awaitable[T]:
            raise error

        return breaker.call_path(on_failure=raise_it)


@pytest.mark.parametrize(
    "machine",
    [PlainCallMachine, FusedRetryCallMachine, HandedOnFailureMachine],
    ids=["breaker.call", "fused-retry", "on-failure"],
)
def test_breaker_behaves_like_the_model(machine: type[BreakerMachine]) -> None:
    run_state_machine_as_test(
        machine, settings=settings(max_examples=60, stateful_step_count=40, deadline=None)
    )
