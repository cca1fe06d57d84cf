"""Deadlines without a timer per call: the watch, on the fake clock and on the real loop."""

from __future__ import annotations

import asyncio

import pytest

from shared.resilience import (
    CallTimeoutError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
)
from shared.resilience.deadline import DeadlineWatch
from shared.resilience.testing import FakeClock, settle


async def hang() -> None:
    await asyncio.Event().wait()


def watch_of(breaker: CircuitBreaker) -> DeadlineWatch:
    watch = breaker._watch
    assert watch is not None
    return watch


async def test_a_call_is_cancelled_within_one_resolution_after_its_deadline() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("db", CircuitBreakerConfig(timeout=2.0), clock=clock)
    resolution = watch_of(breaker).resolution
    task = asyncio.create_task(breaker.call(hang))
    await clock.advance(2.0 - resolution)
    assert not task.done()
    await clock.advance(2 * resolution)
    with pytest.raises(CallTimeoutError, match="db: call timed out after 2 s"):
        await task
    assert watch_of(breaker).in_flight == 0


async def test_calls_time_out_at_their_own_deadlines_so_the_breaker_opens_between_them() -> None:
    """Four calls started 5 ms apart (closer than the watch's 20 ms period) into a dependency
    that stopped answering: the third timeout opens the breaker at its own deadline, which cuts
    the fourth short 5 ms before its deadline instead of letting it time out too."""
    clock = FakeClock()
    config = CircuitBreakerConfig(timeout=2.0, failure_threshold=3)
    breaker = CircuitBreaker("db", config, clock=clock)
    assert watch_of(breaker).resolution == pytest.approx(0.02)
    tasks = []
    for _ in range(4):
        tasks.append(asyncio.create_task(breaker.call(hang)))
        await clock.advance(0.005)
    await clock.advance(2.03)  # past every deadline and a whole period more

    outcomes = [type(task.exception()) if task.done() else "still waiting" for task in tasks]
    assert outcomes == [CallTimeoutError] * 3 + [CircuitBreakerOpenError]
    assert breaker.metrics.timed_out_calls == 3


async def test_an_early_wake_up_keeps_the_whole_period_as_the_stall_bound() -> None:
    """The ticker may sleep less than a period (a near deadline). ``tick_due`` is what
    ``watch()`` compares the time with to decide that the ticker is stalled and start another:
    it must stay a period ahead. Were it the early wake-up time, a call arriving in the loop turn
    the ticker is due in would start a second ticker (a task on the hot path), and that one would
    sleep a whole period past the deadline the early wake-up was for."""
    clock = FakeClock()
    watch = DeadlineWatch(clock, resolution=0.02)
    calls = [hang(), hang()]
    tasks = [asyncio.create_task(call) for call in calls]
    await settle()
    start = clock.monotonic()
    watch.watch(calls[0], deadline=start + 0.025, now=start)
    watch.watch(calls[1], deadline=start + 0.028, now=start)

    await clock.advance(0.025)  # wakes at 0.02, then at the first deadline; next at 0.028

    assert tasks[0].cancelling()
    assert not tasks[1].cancelling()
    assert watch.tick_due == pytest.approx(start + 0.025 + 0.02)
    await clock.advance(0.003)
    assert tasks[1].cancelling()  # woke at 0.028, not a period later
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_awaitable_that_is_not_a_coroutine_is_bounded_too() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("db", CircuitBreakerConfig(timeout=1.0), clock=clock)
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def future_returning() -> asyncio.Future[int]:
        return never

    task = asyncio.create_task(breaker.call(future_returning))
    await clock.advance(1.1)
    with pytest.raises(CallTimeoutError):
        await task


async def test_an_outside_cancellation_at_the_deadline_wins_over_the_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("db", CircuitBreakerConfig(timeout=1.0), clock=clock)
    task = asyncio.create_task(breaker.call(hang))
    await settle()
    task.cancel()  # the caller gave up, and in the same loop turn the deadline passes
    await clock.advance(1.1)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.metrics.cancelled_calls == 1
    assert breaker.metrics.timed_out_calls == 0


async def test_the_timeout_does_not_leak_a_cancel_request_into_the_caller() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("db", CircuitBreakerConfig(timeout=1.0), clock=clock)

    async def caller() -> str:
        with pytest.raises(CallTimeoutError):
            await breaker.call(hang)
        await asyncio.sleep(0)  # would raise CancelledError if the request had leaked
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return "carried on"

    task = asyncio.create_task(caller())
    await clock.advance(1.1)
    assert await task == "carried on"


async def test_nothing_stays_watched_after_success_failure_or_cancellation() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "db", CircuitBreakerConfig(timeout=5.0, failure_threshold=100), clock=clock
    )

    async def ok() -> int:
        return 1

    async def fail() -> None:
        raise ConnectionError

    await breaker.call(ok)
    with pytest.raises(ConnectionError):
        await breaker.call(fail)
    task = asyncio.create_task(breaker.call(hang))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert watch_of(breaker).in_flight == 0


def test_the_watch_works_again_on_a_new_event_loop() -> None:
    """A ticker armed on a loop that closed never fires; the next loop must arm its own.

    This runs on the real clock: it proves the SystemClock wiring, with a 50 ms timeout.
    """
    breaker = CircuitBreaker("db", CircuitBreakerConfig(timeout=0.05))

    async def ok() -> int:
        return 1

    with asyncio.Runner() as first:
        first.run(breaker.call(ok))  # arms the ticker on the first loop, which then closes
    with asyncio.Runner() as second, pytest.raises(CallTimeoutError):
        second.run(asyncio.wait_for(breaker.call(hang), timeout=5.0))


def test_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="resolution must be positive"):
        DeadlineWatch(FakeClock(), 0.0)


async def test_calls_waiting_when_the_breaker_opens_are_refused_at_once() -> None:
    """Only the calls whose own timeouts opened the breaker wait them out; the rest, still
    waiting on the same dead dependency, are refused the moment it opens."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "db",
        CircuitBreakerConfig(timeout=2.0, failure_threshold=3, recovery_timeout=30.0),
        clock=clock,
    )
    first = [asyncio.create_task(breaker.call(hang)) for _ in range(3)]
    await clock.advance(1.0)
    later = [asyncio.create_task(breaker.call(hang)) for _ in range(20)]
    await clock.advance(1.2)  # the first three time out and open the breaker
    for task in first:
        with pytest.raises(CallTimeoutError):
            await task
    for task in later:
        with pytest.raises(CircuitBreakerOpenError) as refused:
            await task
        assert refused.value.retry_after == pytest.approx(30.0, abs=0.5)
    assert clock.monotonic() < 1_000 + 2.3, "the later calls did not wait for their own timeouts"
    metrics = breaker.metrics
    assert (metrics.timed_out_calls, metrics.rejected_calls) == (3, 20)
    assert watch_of(breaker).in_flight == 0
