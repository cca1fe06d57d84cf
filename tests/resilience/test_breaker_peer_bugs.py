"""Bugs known in the Python circuit breakers, each pinned by a test the peer would fail.

The peers, as read from their sources:

- pybreaker (danielfm/pybreaker): ``CircuitBreaker.call`` holds a ``threading.RLock`` around the
  protected call; ``CircuitBreakerState.call`` catches ``BaseException``; an excluded exception is
  handed to ``_handle_success``; ``opened_at`` is ``datetime.now(UTC)``.
- aiobreaker 1.2 (the asyncio port of pybreaker): the same state machine without the lock;
  ``CircuitHalfOpenState`` has no ``before_call`` check; ``opened_at`` is ``datetime.utcnow()``.
- circuitbreaker 2.x (fabfuel/circuitbreaker): ``__exit__`` calls ``reset()`` (closes the breaker)
  for every outcome that is not a failure, ``CancelledError`` included; half-open is only a name
  for "open and the recovery timeout has passed", so every caller goes through. Until
  fabfuel/circuitbreaker#31 it also timed recovery with ``datetime.utcnow()``.

Each test states the behaviour the peer has, and fails under it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shared.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
)
from shared.resilience.testing import FakeClock, settle

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class NotFound(Exception):
    """A business error: the dependency is fine, the row is not there."""


async def succeed() -> str:
    return "ok"


async def fail() -> str:
    raise ConnectionError("connection refused")


async def not_found() -> str:
    raise NotFound("no such quest")


class Dependency:
    """A dependency whose calls stay in flight until the test ends them; it counts how many
    calls reached it and how many were in flight at once."""

    def __init__(self) -> None:
        self._done = asyncio.Event()
        self._error: BaseException | None = None
        self.reached = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self) -> str:
        self.reached += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._done.wait()
            if self._error is not None:
                raise self._error
            return "ok"
        finally:
            self.in_flight -= 1

    def succeed(self) -> None:
        self._done.set()

    def fail(self) -> None:
        self._error = ConnectionError("connection reset")
        self._done.set()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_breaker(clock: FakeClock, **config: Any) -> CircuitBreaker:
    return CircuitBreaker("quests-db", CircuitBreakerConfig(**config), clock=clock)


async def start(breaker: CircuitBreaker, fn: Callable[[], Awaitable[str]]) -> asyncio.Task[str]:
    """Start ``breaker.call(fn)`` in a task and let it reach the dependency."""
    task = asyncio.create_task(breaker.call(fn))
    await settle()
    return task


async def fail_calls(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)


async def trip_to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await fail_calls(breaker, breaker.config.failure_threshold)
    assert breaker.state is OPEN
    await clock.advance(breaker.config.recovery_timeout)
    assert breaker.state is HALF_OPEN


async def settled(task: asyncio.Task[str]) -> str:
    """The call's result; fails the test, instead of hanging it, if the call is still running."""
    await settle()
    assert task.done(), "the call is still in flight"
    return await task


async def cancel(task: asyncio.Task[str]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settled(task)


@pytest.mark.parametrize("half_open_max_calls", [1, 3])
async def test_half_open_lets_at_most_half_open_max_calls_of_50_callers_through(
    clock: FakeClock, half_open_max_calls: int
) -> None:
    """aiobreaker, circuitbreaker and pybreaker (outside its thread lock) let every caller of a
    half-open breaker through: all 50 would reach the recovering dependency."""
    breaker = make_breaker(clock, failure_threshold=1, half_open_max_calls=half_open_max_calls)
    await trip_to_half_open(breaker, clock)
    dependency = Dependency()

    callers = [asyncio.create_task(breaker.call(dependency)) for _ in range(50)]
    await settle()

    assert dependency.reached == half_open_max_calls
    refused = [task for task in callers if task.done()]
    assert len(refused) == 50 - half_open_max_calls
    assert all(isinstance(task.exception(), CircuitBreakerOpenError) for task in refused)
    dependency.succeed()
    trials = [task for task in callers if task not in refused]
    assert [await settled(trial) for trial in trials] == ["ok"] * half_open_max_calls
    assert breaker.state is CLOSED


async def test_a_cancelled_trial_gives_its_permit_back(clock: FakeClock) -> None:
    """A trial permit taken without a ``finally`` leaks on cancellation and the breaker refuses
    every later trial; circuitbreaker instead takes the cancellation for a success and closes,
    pybreaker for a failure and reopens. Here the breaker stays half-open and the next trial
    (only one) is let through."""
    breaker = make_breaker(clock, failure_threshold=1, half_open_max_calls=1)
    await trip_to_half_open(breaker, clock)
    first = Dependency()
    trial = await start(breaker, first)
    with pytest.raises(CircuitBreakerOpenError):
        await breaker.call(succeed)  # the permit is taken

    await cancel(trial)

    assert breaker.state is HALF_OPEN
    second = Dependency()
    next_trial = await start(breaker, second)
    assert second.reached == 1
    with pytest.raises(CircuitBreakerOpenError):
        await breaker.call(succeed)  # and taken again, by the new trial only
    second.succeed()
    assert await settled(next_trial) == "ok"
    assert breaker.state is CLOSED


@pytest.mark.parametrize(
    "config",
    [{"timeout": 10.0}, {"timeout": None}, {"timeout": 10.0, "failure_rate_threshold": 0.5}],
    ids=["bounded", "unbounded", "windowed"],
)
async def test_calls_in_closed_run_concurrently_without_a_lock(
    clock: FakeClock, config: dict[str, Any]
) -> None:
    """pybreaker holds its ``RLock`` for the whole protected call, so two threads' calls through
    one breaker run one after the other. Two slow calls here are in flight at the same time."""
    breaker = make_breaker(clock, **config)
    dependency = Dependency()
    calls = [await start(breaker, dependency), await start(breaker, dependency)]
    assert dependency.most_in_flight == 2
    dependency.succeed()
    assert [await settled(call) for call in calls] == ["ok", "ok"]


async def test_cancellation_is_neither_a_failure_nor_a_success(clock: FakeClock) -> None:
    """pybreaker catches ``BaseException``, so a cancelled call is a failure (here it would open
    the breaker at once); circuitbreaker's ``__exit__`` resets on anything that is not an
    ``Exception``, so a cancelled call wipes the failure count (here the second failure would not
    open it)."""
    breaker = make_breaker(clock, failure_threshold=2)
    await fail_calls(breaker, 1)
    await cancel(await start(breaker, Dependency()))
    assert breaker.state is CLOSED
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN


async def test_business_errors_are_not_failures_and_do_not_reset_the_count(
    clock: FakeClock,
) -> None:
    """circuitbreaker (``expected_exception=Exception``) and aiobreaker/pybreaker without
    ``exclude`` count "not found" as a failure: three of them would open the breaker. With
    ``exclude``, aiobreaker/pybreaker count it as a success and reset the count: the next
    failure would not open it."""
    breaker = make_breaker(clock, failure_threshold=2, ignore_on=NotFound)
    await fail_calls(breaker, 1)
    for _ in range(3):
        with pytest.raises(NotFound):
            await breaker.call(not_found)
    assert breaker.state is CLOSED
    await fail_calls(breaker, 1)
    assert breaker.state is OPEN


async def test_a_business_error_in_half_open_does_not_close_the_breaker(clock: FakeClock) -> None:
    """aiobreaker/pybreaker hand an excluded exception to ``_handle_success``, and the half-open
    state's ``on_success`` closes the breaker on a "not found" that proves nothing."""
    breaker = make_breaker(clock, failure_threshold=1, ignore_on=NotFound)
    await trip_to_half_open(breaker, clock)
    with pytest.raises(NotFound):
        await breaker.call(not_found)
    assert breaker.state is HALF_OPEN


def wall_clock_jumps(clock: FakeClock, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the fake wall clock and ``time.time`` by ``seconds`` (an NTP step); monotonic time
    does not move."""
    real_time = time.time
    clock.jump_wall(seconds)
    monkeypatch.setattr(time, "time", lambda: real_time() + seconds)


async def test_wall_clock_jumping_back_an_hour_does_not_delay_recovery(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiobreaker (``datetime.utcnow()``), pybreaker (``datetime.now(UTC)``) and circuitbreaker
    before #31 compare wall-clock times: after the clock steps back an hour the breaker stays
    open an hour longer. Here it turns half-open exactly at recovery_timeout of monotonic
    time."""
    breaker = make_breaker(clock, failure_threshold=1, recovery_timeout=30.0)
    await fail_calls(breaker, 1)
    wall_before = time.time()
    wall_clock_jumps(clock, monkeypatch, -3600.0)
    assert time.time() < wall_before - 3000.0

    await clock.advance(29.5)
    assert breaker.state is OPEN
    await clock.advance(0.5)
    assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


async def test_wall_clock_jumping_forward_an_hour_does_not_cut_recovery_short(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same peers let trials through at once when the wall clock steps forward an hour."""
    breaker = make_breaker(clock, failure_threshold=1, recovery_timeout=30.0)
    await fail_calls(breaker, 1)
    wall_clock_jumps(clock, monkeypatch, +3600.0)

    with pytest.raises(CircuitBreakerOpenError) as refusal:
        await breaker.call(succeed)
    assert refusal.value.retry_after == 30.0
    await clock.advance(29.5)
    assert breaker.state is OPEN
    await clock.advance(0.5)
    assert breaker.state is HALF_OPEN


async def test_a_stale_success_from_before_the_breaker_opened_does_not_close_it(
    clock: FakeClock,
) -> None:
    """circuitbreaker's ``__exit__`` calls ``reset()`` on every success, whenever the call
    started: a slow call that began while the dependency was healthy closes a breaker that has
    just opened, or that is half-open and waiting for a real trial."""
    breaker = make_breaker(clock, failure_threshold=2, recovery_timeout=5.0, timeout=60.0)
    first, second = Dependency(), Dependency()
    stale_calls = [await start(breaker, first), await start(breaker, second)]
    await fail_calls(breaker, 2)
    assert breaker.state is OPEN

    first.succeed()
    assert await settled(stale_calls[0]) == "ok"
    assert breaker.state is OPEN
    await clock.advance(5.0)
    assert breaker.state is HALF_OPEN
    second.succeed()
    assert await settled(stale_calls[1]) == "ok"
    assert breaker.state is HALF_OPEN
    assert breaker.metrics.successful_calls == 2


async def test_a_stale_trial_success_after_a_sibling_trial_failed_does_not_close_it(
    clock: FakeClock,
) -> None:
    """In aiobreaker and pybreaker the success handler is the half-open state object's
    ``on_success``, which closes the breaker even after a sibling trial has reopened it (and
    still does once the breaker is half-open again)."""
    breaker = make_breaker(
        clock, failure_threshold=1, half_open_max_calls=3, recovery_timeout=5.0, timeout=60.0
    )
    await trip_to_half_open(breaker, clock)
    first, second, failing = Dependency(), Dependency(), Dependency()
    trials = [await start(breaker, dependency) for dependency in (first, second, failing)]
    failing.fail()
    with pytest.raises(ConnectionError):
        await settled(trials[2])
    assert breaker.state is OPEN

    first.succeed()
    assert await settled(trials[0]) == "ok"
    assert breaker.state is OPEN
    await clock.advance(5.0)
    assert breaker.state is HALF_OPEN
    second.succeed()
    assert await settled(trials[1]) == "ok"
    assert breaker.state is HALF_OPEN
