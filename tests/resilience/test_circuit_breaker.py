"""Circuit breaker: transitions, what counts as a failure, timeouts, cancellation, stale calls,
operator actions, listeners, metrics, rate windows, configuration, registry and decorator.

All time is a :class:`FakeClock`: nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from shared.resilience import (
    CallTimeoutError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    PolicyRegistry,
    ResilienceError,
    StateChange,
    circuit_breaker,
    default_registry,
    get_circuit_breaker,
)
from shared.resilience.testing import FakeClock, settle

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class NotFound(Exception):
    """A business error: the dependency answered, and the answer was "no such quest"."""


async def succeed() -> str:
    return "ok"


async def fail() -> str:
    raise ConnectionError("connection refused")


async def not_found() -> str:
    raise NotFound("no such quest")


class Gate:
    """A dependency call that stays in flight until the test ends it."""

    def __init__(self) -> None:
        self._done = asyncio.Event()
        self._error: BaseException | None = None
        self.started = 0

    async def __call__(self) -> str:
        self.started += 1
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return "ok"

    def succeed(self) -> None:
        self._done.set()

    def fail(self) -> None:
        self._error = ConnectionError("connection reset")
        self._done.set()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


CALL_PATHS: dict[str, dict[str, Any]] = {
    "bounded": {"timeout": 10.0},  # CLOSED fast path under the deadline watch
    "unbounded": {"timeout": None},  # CLOSED fast path without a deadline
    "windowed": {"failure_rate_threshold": 1.0},  # every call through the guarded path
}


@pytest.fixture(params=list(CALL_PATHS.values()), ids=list(CALL_PATHS))
def call_path(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Config that picks one of the breaker's call paths; the rest of a test is the same."""
    return cast("dict[str, Any]", request.param)


def make_breaker(clock: FakeClock, **config: Any) -> CircuitBreaker:
    return CircuitBreaker("quests-db", CircuitBreakerConfig(**config), clock=clock)


async def start(breaker: CircuitBreaker, fn: Callable[[], Awaitable[str]]) -> asyncio.Task[str]:
    """Start ``breaker.call(fn)`` in a task and let it reach the dependency."""
    task = asyncio.create_task(breaker.call(fn))
    await settle()
    return task


async def settled(task: asyncio.Task[str]) -> str:
    """The call's result; fails the test, instead of hanging it, if the call is still running."""
    await settle()
    assert task.done(), "the call is still in flight"
    return await task


async def fail_calls(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)


async def trip(breaker: CircuitBreaker) -> None:
    await fail_calls(breaker, breaker.config.failure_threshold)
    assert breaker.state is OPEN


async def trip_to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await trip(breaker)
    await clock.advance(breaker.config.recovery_timeout)
    assert breaker.state is HALF_OPEN


async def refused(breaker: CircuitBreaker) -> CircuitBreakerOpenError:
    """The error of a call the breaker refuses; fails the test if the dependency is reached."""
    reached = False

    async def dependency() -> str:
        nonlocal reached
        reached = True
        return "ok"

    with pytest.raises(CircuitBreakerOpenError) as refusal:
        await breaker.call(dependency)
    assert not reached, "a refused call must never reach the dependency"
    return refusal.value


async def call_lasting(breaker: CircuitBreaker, clock: FakeClock, seconds: float) -> str:
    """A successful call that takes ``seconds`` of fake time."""
    gate = Gate()
    task = await start(breaker, gate)
    await clock.advance(seconds)
    gate.succeed()
    return await settled(task)


# -- CLOSED -> OPEN -> HALF_OPEN -> CLOSED -------------------------------------------------------


async def test_consecutive_failures_up_to_the_threshold_open_the_breaker(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=3, **call_path)
    await fail_calls(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.metrics.consecutive_failures == 2
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN


async def test_a_success_resets_the_consecutive_failure_count(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=3, **call_path)
    await fail_calls(breaker, 2)
    assert await breaker.call(succeed) == "ok"
    assert breaker.metrics.consecutive_failures == 0
    await fail_calls(breaker, 2)
    assert breaker.state is CLOSED
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN


async def test_open_breaker_refuses_and_says_how_long_until_the_trial(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2, recovery_timeout=30.0)
    await trip(breaker)
    await clock.advance(12.0)
    error = await refused(breaker)
    assert isinstance(error, ResilienceError)
    assert (error.name, error.state, error.retry_after) == ("quests-db", "open", 18.0)
    assert breaker.metrics.retry_after == 18.0
    assert "quests-db" in str(error)


async def test_breaker_turns_half_open_exactly_when_the_recovery_timeout_has_passed(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, failure_threshold=1, recovery_timeout=30.0)
    await trip(breaker)
    await clock.advance(29.5)
    assert (await refused(breaker)).retry_after == 0.5
    assert breaker.state is OPEN
    await clock.advance(0.5)
    assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"


async def test_success_threshold_trial_successes_close_the_breaker(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=1, success_threshold=3, **call_path)
    await trip_to_half_open(breaker, clock)
    for _ in range(2):
        assert await breaker.call(succeed) == "ok"
        assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED
    assert breaker.metrics.consecutive_failures == 0


async def test_any_failure_in_half_open_reopens_and_restarts_the_recovery_timeout(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(
        clock, failure_threshold=1, success_threshold=3, recovery_timeout=30.0, **call_path
    )
    await trip_to_half_open(breaker, clock)
    await breaker.call(succeed)
    await breaker.call(succeed)
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN
    assert (await refused(breaker)).retry_after == 30.0
    # The two earlier trial successes are forgotten: three new ones are needed.
    await clock.advance(30.0)
    await breaker.call(succeed)
    await breaker.call(succeed)
    assert breaker.state is HALF_OPEN


async def test_half_open_runs_at_most_half_open_max_calls_trials_at_a_time(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, failure_threshold=1, half_open_max_calls=2)
    await trip_to_half_open(breaker, clock)
    gate = Gate()
    trials = [await start(breaker, gate), await start(breaker, gate)]
    error = await refused(breaker)
    assert error.state == "half_open"
    assert error.retry_after > 0
    assert breaker.metrics.half_open_in_flight == 2
    gate.succeed()
    assert [await settled(trial) for trial in trials] == ["ok", "ok"]
    assert breaker.state is CLOSED


# -- what counts ------------------------------------------------------------------------------


async def test_business_errors_neither_add_to_nor_reset_consecutive_failures(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=3, ignore_on=NotFound, **call_path)
    await fail_calls(breaker, 2)
    for _ in range(5):
        with pytest.raises(NotFound):
            await breaker.call(not_found)
    assert breaker.state is CLOSED
    assert breaker.metrics.consecutive_failures == 2
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN
    assert (breaker.metrics.ignored_calls, breaker.metrics.failed_calls) == (5, 3)


async def test_business_error_in_half_open_neither_closes_nor_reopens(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1, ignore_on=NotFound)
    await trip_to_half_open(breaker, clock)
    with pytest.raises(NotFound):
        await breaker.call(not_found)
    assert breaker.state is HALF_OPEN
    assert breaker.metrics.half_open_in_flight == 0
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


def is_server_error(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionError) and "503" in str(exc)


@pytest.mark.parametrize(
    "failure_on",
    [is_server_error, (TimeoutError, LookupError)],
    ids=["predicate", "exception-types"],
)
async def test_failure_on_decides_which_errors_are_failures(
    clock: FakeClock, failure_on: Any
) -> None:
    breaker = make_breaker(clock, failure_threshold=2, failure_on=failure_on)

    async def raises(error: Exception) -> str:
        raise error

    not_failures: list[Exception] = [ConnectionError("404 not found"), ValueError("bad input")]
    for error in not_failures * 3:
        with pytest.raises(type(error)):
            await breaker.call(raises, error)
    assert breaker.state is CLOSED
    assert breaker.metrics.failed_calls == 0
    assert breaker.metrics.ignored_calls == 6

    failure = ConnectionError("503") if failure_on is is_server_error else KeyError("gone")
    for _ in range(2):
        with pytest.raises(type(failure)):
            await breaker.call(raises, failure)
    assert breaker.state is OPEN


# -- the breaker's own timeout ------------------------------------------------------------------


async def test_own_timeout_raises_call_timeout_error_and_counts_as_a_failure(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, failure_threshold=2, timeout=10.0)
    call = await start(breaker, Gate())
    await clock.advance(9.9)
    assert not call.done(), "cancelled before its deadline"
    await clock.advance(0.6)  # past the deadline plus the watch's resolution (0.5 s)
    assert call.done()
    with pytest.raises(CallTimeoutError) as timed_out:
        await settled(call)
    assert isinstance(timed_out.value, TimeoutError)
    assert timed_out.value.timeout == 10.0
    metrics = breaker.metrics
    assert (metrics.failed_calls, metrics.timed_out_calls, metrics.cancelled_calls) == (1, 1, 0)
    assert metrics.consecutive_failures == 1

    second = await start(breaker, Gate())
    await clock.advance(10.5)
    with pytest.raises(CallTimeoutError):
        await settled(second)
    assert breaker.state is OPEN


async def test_a_trial_that_times_out_reopens_the_breaker(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1, timeout=2.0, recovery_timeout=30.0)
    await trip_to_half_open(breaker, clock)
    trial = await start(breaker, Gate())
    await clock.advance(2.2)  # resolution for a 2 s bound is 0.1 s
    with pytest.raises(CallTimeoutError):
        await settled(trial)
    assert breaker.state is OPEN
    assert breaker.metrics.timed_out_calls == 1


async def test_without_a_timeout_a_slow_call_is_left_to_finish(clock: FakeClock) -> None:
    breaker = make_breaker(clock, timeout=None)
    gate = Gate()
    call = await start(breaker, gate)
    await clock.advance(3600.0)
    assert not call.done()
    gate.succeed()
    assert await settled(call) == "ok"
    assert breaker.metrics.timed_out_calls == 0


# -- cancellation from outside ------------------------------------------------------------------


async def test_outside_cancellation_is_neither_a_failure_nor_a_success(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=2, **call_path)
    await fail_calls(breaker, 1)
    call = await start(breaker, Gate())
    await clock.advance(5.0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settled(call)
    metrics = breaker.metrics
    assert (metrics.cancelled_calls, metrics.failed_calls, metrics.successful_calls) == (1, 1, 0)
    assert metrics.timed_out_calls == 0
    assert breaker.state is CLOSED  # not a failure: one failure is still below the threshold
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN  # not a success either: the first failure still counts


async def test_cancelled_trial_leaves_the_breaker_half_open_and_frees_its_permit(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    await trip_to_half_open(breaker, clock)
    trial = await start(breaker, Gate())
    assert breaker.metrics.half_open_in_flight == 1
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settled(trial)
    assert breaker.state is HALF_OPEN
    assert breaker.metrics.half_open_in_flight == 0
    assert breaker.metrics.cancelled_calls == 1
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


# -- calls that started under an earlier state ------------------------------------------------


async def test_failure_of_a_call_started_before_reset_does_not_count(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=1, **call_path)
    gate = Gate()
    call = await start(breaker, gate)
    breaker.reset()
    gate.fail()
    with pytest.raises(ConnectionError):
        await settled(call)
    assert breaker.state is CLOSED
    assert breaker.metrics.consecutive_failures == 0
    assert breaker.metrics.failed_calls == 1  # still counted in the metrics


async def test_success_of_a_call_started_before_reset_does_not_clear_later_failures(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=2, **call_path)
    gate = Gate()
    call = await start(breaker, gate)
    breaker.reset()
    await fail_calls(breaker, 1)
    gate.succeed()
    assert await settled(call) == "ok"
    assert breaker.metrics.consecutive_failures == 1
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN


async def test_success_of_a_trial_started_before_force_open_does_not_close(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    await trip_to_half_open(breaker, clock)
    gate = Gate()
    trial = await start(breaker, gate)
    breaker.force_open()
    gate.succeed()
    assert await settled(trial) == "ok"
    assert breaker.state is OPEN
    assert breaker.metrics.forced_open
    assert breaker.metrics.successful_calls == 1


async def test_failure_of_a_call_started_while_closed_does_not_reopen_half_open(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=2, recovery_timeout=5.0, **call_path)
    gate = Gate()
    slow = await start(breaker, gate)
    await trip_to_half_open(breaker, clock)
    gate.fail()
    with pytest.raises(ConnectionError):
        await settled(slow)
    assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


async def test_success_of_a_call_started_while_closed_does_not_close_half_open(
    clock: FakeClock, call_path: dict[str, Any]
) -> None:
    breaker = make_breaker(clock, failure_threshold=2, recovery_timeout=5.0, **call_path)
    gate = Gate()
    slow = await start(breaker, gate)
    await trip_to_half_open(breaker, clock)
    gate.succeed()
    assert await settled(slow) == "ok"
    assert breaker.state is HALF_OPEN
    assert breaker.metrics.successful_calls == 1


# -- operator actions ---------------------------------------------------------------------------


async def test_reset_closes_an_open_breaker_with_a_fresh_failure_count(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2)
    await fail_calls(breaker, 1)
    breaker.reset()
    await fail_calls(breaker, 1)
    assert breaker.state is CLOSED  # the failure before the reset is forgotten
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN
    breaker.reset()
    assert breaker.state is CLOSED
    assert await breaker.call(succeed) == "ok"


async def test_force_open_refuses_calls_past_the_recovery_timeout_until_reset(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, recovery_timeout=30.0)
    breaker.force_open()
    assert breaker.state is OPEN
    await clock.advance(90.0)
    forced = breaker.metrics
    assert (forced.state, forced.forced_open) == (OPEN, True)
    error = await refused(breaker)
    assert error.retry_after == 30.0
    breaker.reset()
    after_reset = breaker.metrics
    assert (after_reset.state, after_reset.forced_open) == (CLOSED, False)
    assert await breaker.call(succeed) == "ok"


# -- listeners -----------------------------------------------------------------------------------


async def test_listeners_are_told_every_state_change(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=2, recovery_timeout=30.0)
    changes: list[StateChange] = []
    breaker.add_listener(changes.append)

    await fail_calls(breaker, 2)
    opened_at = clock.wall()
    await clock.advance(30.0)
    await breaker.call(succeed)
    closed_at = clock.wall()

    assert [(c.old, c.new) for c in changes] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert all(c.name == "quests-db" and c.reason for c in changes)
    assert "2 consecutive failures" in changes[0].reason
    assert [c.at for c in changes] == [opened_at, closed_at, closed_at]

    breaker.reset()  # already closed: no change, no notification
    assert len(changes) == 3


async def test_a_failing_listener_breaks_neither_calls_nor_other_listeners(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    changes: list[StateChange] = []

    def broken(change: StateChange) -> None:
        raise RuntimeError("metrics backend is down")

    breaker.add_listener(broken)
    breaker.add_listener(changes.append)
    with caplog.at_level(logging.ERROR, logger="shared.resilience.circuit_breaker"):
        await fail_calls(breaker, 1)  # the dependency's error, not the listener's
    assert breaker.state is OPEN
    assert [c.new for c in changes] == [OPEN]
    assert any("listener" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_removed_listener_is_no_longer_told(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1)
    changes: list[StateChange] = []
    breaker.add_listener(changes.append)
    breaker.remove_listener(changes.append)
    await trip(breaker)
    assert changes == []


# -- metrics --------------------------------------------------------------------------------------


async def test_metrics_count_each_kind_of_outcome(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=3, timeout=10.0, ignore_on=NotFound)
    assert breaker.metrics.last_transition_at is None
    assert breaker.metrics.state_transitions == 0

    await breaker.call(succeed)
    await fail_calls(breaker, 1)
    with pytest.raises(NotFound):
        await breaker.call(not_found)
    cancelled = await start(breaker, Gate())
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settled(cancelled)
    timed_out = await start(breaker, Gate())
    await clock.advance(10.5)
    with pytest.raises(CallTimeoutError):
        await settled(timed_out)
    clock.jump_wall(-7200.0)  # transition times are wall-clock readings, jumps and all
    opened_at = clock.wall()
    await fail_calls(breaker, 1)  # third consecutive failure: ignored and cancelled don't reset
    await refused(breaker)

    metrics = breaker.metrics
    assert metrics.state is OPEN
    assert metrics.total_calls == 7
    assert metrics.successful_calls == 1
    assert metrics.failed_calls == 3
    assert metrics.timed_out_calls == 1
    assert metrics.rejected_calls == 1
    assert metrics.ignored_calls == 1
    assert metrics.cancelled_calls == 1
    assert metrics.failure_rate == 0.75
    assert metrics.state_transitions == 1
    assert metrics.last_transition_at == opened_at == 1_700_000_010.5 - 7200.0
    assert metrics.as_dict()["state"] == "open"


# -- rate windows -----------------------------------------------------------------------------


def windowed(clock: FakeClock, **config: Any) -> CircuitBreaker:
    """A breaker judged only by rates over the last 4 calls (consecutive failures never trip it)."""
    return make_breaker(
        clock, failure_threshold=1_000, sliding_window_size=4, minimum_calls=4, **config
    )


async def outcomes(breaker: CircuitBreaker, pattern: str) -> None:
    """Run one call per letter: ``S`` succeeds, ``F`` fails."""
    for letter in pattern:
        if letter == "S":
            assert await breaker.call(succeed) == "ok"
        else:
            await fail_calls(breaker, 1)


async def test_failure_rate_is_not_judged_before_minimum_calls(clock: FakeClock) -> None:
    breaker = windowed(clock, failure_rate_threshold=0.5)
    await outcomes(breaker, "FFF")
    assert breaker.state is CLOSED  # 100% of 3 calls, but 4 are needed
    await outcomes(breaker, "F")
    assert breaker.state is OPEN


async def test_failure_rate_is_judged_over_the_latest_calls_only(clock: FakeClock) -> None:
    breaker = windowed(clock, failure_rate_threshold=0.5)
    await outcomes(breaker, "SSSF")
    assert breaker.state is CLOSED
    assert breaker.metrics.failure_rate == 0.25
    await outcomes(breaker, "F")  # the window is now S S F F: 50% (all five calls: 40%)
    assert breaker.state is OPEN


async def test_failure_rate_is_judged_when_a_success_fills_the_window_to_minimum_calls(
    clock: FakeClock,
) -> None:
    breaker = windowed(clock, failure_rate_threshold=0.5)
    await outcomes(breaker, "FFSS")  # 4 calls, 50% failed: at the threshold
    assert breaker.state is OPEN


async def test_a_window_smaller_than_minimum_calls_is_rejected_or_still_judged(
    clock: FakeClock,
) -> None:
    # Either fix is right: reject the config, or judge a full window (resilience4j caps
    # minimumNumberOfCalls at the window size).
    try:
        config = CircuitBreakerConfig(
            failure_threshold=1_000, failure_rate_threshold=0.5, sliding_window_size=5
        )  # minimum_calls defaults to 10
    except ValueError as error:
        assert "minimum_calls" in str(error)  # noqa: PT017
        return
    breaker = CircuitBreaker("quests-db", config, clock=clock)
    await fail_calls(breaker, 5)  # a full window, 100% failed
    assert breaker.state is OPEN


async def test_slow_call_rate_over_the_threshold_opens_the_breaker(clock: FakeClock) -> None:
    breaker = windowed(clock, slow_call_duration=2.0, slow_call_rate_threshold=0.5, timeout=10.0)
    await call_lasting(breaker, clock, 0.0)
    await call_lasting(breaker, clock, 0.5)
    await call_lasting(breaker, clock, 2.0)  # exactly the limit: not slow
    await call_lasting(breaker, clock, 3.0)
    assert breaker.state is CLOSED  # 1 slow call in 4
    assert breaker.metrics.slow_calls == 1
    await call_lasting(breaker, clock, 3.0)  # window: 0.5, 2.0, 3.0, 3.0 -> 50% slow
    assert breaker.state is OPEN
    assert breaker.metrics.slow_calls == 2
    assert breaker.metrics.failed_calls == 0


async def test_a_slow_trial_reopens_the_breaker(clock: FakeClock) -> None:
    breaker = make_breaker(clock, failure_threshold=1, slow_call_duration=2.0, timeout=10.0)
    await trip_to_half_open(breaker, clock)
    assert await call_lasting(breaker, clock, 3.0) == "ok"
    assert breaker.state is OPEN


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("failure_threshold", 0, "failure_threshold must be an integer >= 1, got 0"),
        ("failure_threshold", 2.5, "failure_threshold must be an integer >= 1, got 2.5"),
        ("success_threshold", -1, "success_threshold must be an integer >= 1, got -1"),
        ("half_open_max_calls", 0, "half_open_max_calls must be an integer >= 1, got 0"),
        ("sliding_window_size", 0, "sliding_window_size must be an integer >= 1, got 0"),
        ("minimum_calls", 0, "minimum_calls must be an integer >= 1, got 0"),
        ("recovery_timeout", -1.0, "recovery_timeout must be >= 0, got -1.0"),
        ("recovery_timeout", math.nan, "recovery_timeout must be >= 0, got nan"),
        ("timeout", 0.0, "timeout must be > 0 or None, got 0.0"),
        ("timeout", -5.0, "timeout must be > 0 or None, got -5.0"),
        ("slow_call_duration", 0.0, "slow_call_duration must be > 0 or None, got 0.0"),
        ("failure_rate_threshold", 0.0, "failure_rate_threshold must be in (0, 1], got 0.0"),
        ("failure_rate_threshold", 1.5, "failure_rate_threshold must be in (0, 1], got 1.5"),
        ("slow_call_rate_threshold", 0.0, "slow_call_rate_threshold must be in (0, 1], got 0.0"),
    ],
)
def test_invalid_config_is_a_value_error_naming_field_and_value(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"CircuitBreakerConfig.{message}")):
        CircuitBreakerConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("failure_on", "ConnectionError"), ("ignore_on", (NotFound, int))],
)
def test_a_matcher_that_is_no_exception_type_or_predicate_is_a_type_error(
    field: str, value: Any
) -> None:
    with pytest.raises(TypeError, match=re.escape(f"CircuitBreakerConfig.{field}")):
        CircuitBreakerConfig(**{field: value})


def test_boundary_values_are_valid() -> None:
    config = CircuitBreakerConfig(
        failure_threshold=1,
        recovery_timeout=0.0,
        timeout=None,
        failure_rate_threshold=1.0,
        slow_call_rate_threshold=1.0,
        minimum_calls=1,
        sliding_window_size=1,
    )
    assert config.windowed


# -- registry and decorator -------------------------------------------------------------------


async def test_registry_gives_every_caller_of_a_name_the_same_breaker(clock: FakeClock) -> None:
    registry = PolicyRegistry(clock)
    config = CircuitBreakerConfig(failure_threshold=1, recovery_timeout=5.0)
    breaker = registry.circuit_breaker("db", config)
    assert registry.circuit_breaker("db", config) is breaker
    equal_config = CircuitBreakerConfig(failure_threshold=1, recovery_timeout=5.0)
    assert registry.circuit_breaker("db", equal_config) is breaker
    assert registry.circuit_breaker("db") is breaker
    assert registry.find_circuit_breaker("db") is breaker
    assert registry.circuit_breaker("s3", config) is not breaker
    # ... on the registry's clock.
    await trip(breaker)
    await clock.advance(5.0)
    assert breaker.state is HALF_OPEN


def test_registry_refuses_a_second_config_for_a_name(clock: FakeClock) -> None:
    registry = PolicyRegistry(clock)
    breaker = registry.circuit_breaker("db", CircuitBreakerConfig(failure_threshold=3))
    with pytest.raises(ValueError, match="'db' already exists with another configuration"):
        registry.circuit_breaker("db", CircuitBreakerConfig(failure_threshold=4))
    assert registry.circuit_breaker("db") is breaker
    assert breaker.config.failure_threshold == 3


def test_get_circuit_breaker_shares_the_process_breaker_of_a_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"test-breaker-{uuid.uuid4()}"
    config = CircuitBreakerConfig(failure_threshold=2)
    breaker = get_circuit_breaker(name, config)
    assert get_circuit_breaker(name) is breaker
    assert get_circuit_breaker(name, config) is breaker
    assert default_registry().find_circuit_breaker(name) is breaker
    assert not [r for r in caplog.records if getattr(r, "event", None) == "breaker_config_ignored"]
    # Another configuration: still the one breaker of that name (never a second opinion), and
    # a warning that the configuration asked for is not the one in force.
    assert get_circuit_breaker(name, CircuitBreakerConfig(failure_threshold=3)) is breaker
    assert breaker.config.failure_threshold == 2
    assert [r for r in caplog.records if getattr(r, "event", None) == "breaker_config_ignored"]
    with pytest.raises(ValueError, match="already exists with another configuration"):
        default_registry().circuit_breaker(name, CircuitBreakerConfig(failure_threshold=3))


async def test_decorator_keeps_the_function_and_calls_through_the_named_breaker(
    clock: FakeClock,
) -> None:
    registry = PolicyRegistry(clock)

    @circuit_breaker("users", CircuitBreakerConfig(failure_threshold=1), registry=registry)
    async def fetch_user(user_id: int) -> str:
        """Load one user."""
        if user_id < 0:
            raise ConnectionError("users service is down")
        return f"user-{user_id}"

    assert fetch_user.__name__ == "fetch_user"
    assert fetch_user.__qualname__.endswith("<locals>.fetch_user")
    assert fetch_user.__doc__ == "Load one user."
    assert await fetch_user(7) == "user-7"
    with pytest.raises(ConnectionError):
        await fetch_user(-1)
    breaker = registry.find_circuit_breaker("users")
    assert breaker is not None
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerOpenError):
        await fetch_user(7)
