"""The request's deadline, carried to every policy it calls: retry waits, attempts and breaker calls
are cut to what is left; outside a request nothing changes. All on the fake clock."""

from __future__ import annotations

import asyncio
import random
from contextlib import nullcontext

import pytest

from shared.resilience import (
    CallTimeoutError,
    CircuitBreakerConfig,
    CircuitState,
    Dependency,
    HealthChecker,
    Jitter,
    PolicyRegistry,
    RequestDeadlineError,
    RetryConfig,
    RetryDeadlineError,
    RetryDetails,
    no_request_deadline,
    remaining,
    request_deadline,
)
from shared.resilience.background import BackgroundTasks
from shared.resilience.testing import FakeClock, settle

START = 1_000.0
"""FakeClock's monotonic time at creation."""


async def hang() -> None:
    await asyncio.Event().wait()


async def refused() -> None:
    raise ConnectionError("refused")


def finished(task: asyncio.Task[object]) -> asyncio.Task[object]:
    """The task, which must have ended by now (rather than hang the test when it did not)."""
    assert task.done(), "the call is still waiting"
    return task


class Calls:
    def __init__(self) -> None:
        self.count = 0

    async def hang(self) -> None:
        self.count += 1
        await hang()

    async def refused(self) -> None:
        self.count += 1
        await refused()


def breaker_config(**overrides: object) -> CircuitBreakerConfig:
    values: dict[str, object] = {"failure_threshold": 3, "recovery_timeout": 30.0, "timeout": 20.0}
    return CircuitBreakerConfig(**{**values, **overrides})  # type: ignore[arg-type]


def retry_config(**overrides: object) -> RetryConfig:
    values: dict[str, object] = {
        "max_attempts": 5,
        "base_delay": 1.0,
        "max_delay": 30.0,
        "timeout": 60.0,
        "jitter": Jitter.NONE,
    }
    return RetryConfig(**{**values, **overrides})  # type: ignore[arg-type]


# -- the scope ---------------------------------------------------------------------------------


def test_outside_a_request_there_is_no_deadline() -> None:
    assert remaining(FakeClock()) is None


async def test_remaining_counts_down_and_stops_at_zero() -> None:
    clock = FakeClock()
    with request_deadline(2.0, clock=clock) as deadline:
        assert deadline == START + 2.0
        assert remaining(clock) == 2.0
        await clock.advance(0.5)
        assert remaining(clock) == 1.5
        await clock.advance(5.0)
        assert remaining(clock) == 0.0
    assert remaining(clock) is None


def test_nested_scopes_keep_the_earlier_deadline() -> None:
    clock = FakeClock()
    with request_deadline(2.0, clock=clock):
        with request_deadline(10.0, clock=clock) as inner:
            assert inner == START + 2.0, "an inner scope never extends the request's budget"
            assert remaining(clock) == 2.0
        with request_deadline(0.5, clock=clock) as inner:
            assert inner == START + 0.5
            assert remaining(clock) == 0.5
        assert remaining(clock) == 2.0, "leaving the inner scope restores the outer deadline"
        with no_request_deadline():
            assert remaining(clock) is None
        assert remaining(clock) == 2.0


async def test_a_restarted_scope_gets_a_budget_of_its_own_until_it_ends() -> None:
    clock = FakeClock()
    with request_deadline(2.0, clock=clock):
        await clock.advance(5.0)  # the client's upload took longer than the whole budget
        assert remaining(clock) == 0.0
        with request_deadline(2.0, clock=clock, restart=True) as fresh:
            assert fresh == START + 7.0, "counted from now, not from the request's arrival"
            assert remaining(clock) == 2.0
            with request_deadline(10.0, clock=clock) as inner:
                assert inner == fresh, "a scope inside it still never extends it"
        assert remaining(clock) == 0.0, "leaving it restores the request's own deadline"


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan")])
def test_a_budget_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds must be > 0"), request_deadline(seconds):
        pass


async def test_background_work_started_in_a_request_has_no_deadline() -> None:
    clock = FakeClock()
    seen: list[float | None] = []

    async def work() -> None:
        seen.append(remaining(clock))

    tasks = BackgroundTasks()
    with request_deadline(2.0, clock=clock):
        tasks.spawn(work())
        await settle()
    assert seen == [None]


# -- the breaker -------------------------------------------------------------------------------


async def test_a_breaker_call_is_cut_to_what_is_left_of_the_request() -> None:
    """Breaker timeout 20 s, request budget 2 s: the call ends at 2 s, not 20 s; having had 2 s
    to answer, the dependency's silence is a timeout (a failure)."""
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("s3", breaker_config())
    with request_deadline(2.0, clock=clock):
        task = asyncio.create_task(breaker.call(hang))
    await clock.advance(1.9)
    assert not task.done()
    await clock.advance(0.2)
    with pytest.raises(RequestDeadlineError, match="s3: the request's deadline passed after 2 s"):
        await finished(task)
    metrics = breaker.metrics
    assert (metrics.timed_out_calls, metrics.consecutive_failures) == (1, 1)


async def test_a_call_given_too_little_time_is_not_held_against_the_dependency() -> None:
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("db", breaker_config(failure_threshold=1))
    with request_deadline(0.3, clock=clock):
        task = asyncio.create_task(breaker.call(hang))
    await clock.advance(0.4)
    with pytest.raises(RequestDeadlineError):
        await finished(task)
    metrics = breaker.metrics
    assert (metrics.failed_calls, metrics.cancelled_calls) == (0, 1)
    assert breaker.state is CircuitState.CLOSED


async def test_a_dependency_that_stopped_answering_still_opens_its_breaker() -> None:
    """Requests' budgets (2 s) are shorter than the breaker's timeout (20 s): their cut calls
    are the timeouts that open it, and the next request is refused at once."""
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("s3", breaker_config(failure_threshold=3))
    for _ in range(3):
        with request_deadline(2.0, clock=clock):
            task = asyncio.create_task(breaker.call(hang))
        await clock.advance(2.1)
        with pytest.raises(RequestDeadlineError):
            await finished(task)
    assert breaker.state is CircuitState.OPEN


async def test_a_call_after_the_budget_is_spent_is_not_started_nor_counted() -> None:
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("db", breaker_config())
    calls = Calls()
    with request_deadline(1.0, clock=clock):
        await clock.advance(1.0)
        with pytest.raises(RequestDeadlineError, match="before the call started"):
            await breaker.call(calls.hang)
    assert calls.count == 0
    assert breaker.metrics.total_calls == 0


async def test_a_breaker_without_a_timeout_is_cut_inside_a_request_only() -> None:
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("db", breaker_config(timeout=None))
    with request_deadline(2.0, clock=clock):
        task = asyncio.create_task(breaker.call(hang))
    outside = asyncio.create_task(breaker.call(hang))
    await clock.advance(60.0)
    with pytest.raises(RequestDeadlineError):
        await finished(task)
    assert not outside.done(), "outside a request an unbounded breaker call stays unbounded"
    outside.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outside


async def test_a_trial_call_cut_by_the_request_gives_back_its_permit() -> None:
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker(
        "db", breaker_config(failure_threshold=1, recovery_timeout=5.0)
    )
    with pytest.raises(ConnectionError):
        await breaker.call(refused)
    await clock.advance(5.0)
    with request_deadline(0.3, clock=clock):
        trial = asyncio.create_task(breaker.call(hang))
    await clock.advance(0.4)
    with pytest.raises(RequestDeadlineError):
        await finished(trial)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.metrics.half_open_in_flight == 0

    async def fine() -> str:
        return "ok"

    assert await breaker.call(fine) == "ok", "the permit was given back: a new trial may run"


async def test_cancellation_from_outside_still_wins_inside_a_request() -> None:
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("db", breaker_config())
    with request_deadline(2.0, clock=clock):
        task = asyncio.create_task(breaker.call(hang))
    await clock.advance(1.0)
    task.cancel()
    await settle()
    with pytest.raises(asyncio.CancelledError):
        await finished(task)
    assert breaker.metrics.cancelled_calls == 1
    assert breaker.metrics.failed_calls == 0


async def test_the_breaker_own_timeout_holds_when_it_is_the_earlier() -> None:
    clock = FakeClock()
    breaker = PolicyRegistry(clock).circuit_breaker("db", breaker_config(timeout=1.0))
    with request_deadline(10.0, clock=clock):
        task = asyncio.create_task(breaker.call(hang))
    await clock.advance(1.1)
    with pytest.raises(CallTimeoutError) as raised:
        await finished(task)
    assert type(raised.value) is CallTimeoutError


# -- the retry ---------------------------------------------------------------------------------


async def test_a_retry_wait_that_would_reach_the_deadline_is_not_taken() -> None:
    """Waits 1, 2, 4 s with a 60 s deadline of its own; with 2.5 s of request left, the policy
    waits 1 s, tries again, and gives up with the real error rather than wait 2 s more."""
    clock = FakeClock(autojump=True)
    seen: list[RetryDetails] = []
    policy = PolicyRegistry(clock).retry_policy("s3", retry_config(hooks=(seen.append,)))
    calls = Calls()
    with request_deadline(2.5, clock=clock), pytest.raises(ConnectionError):
        await policy.call(calls.refused)
    assert calls.count == 2
    assert clock.sleeps == [1.0]
    assert seen[-1].gave_up == "request_deadline"
    assert clock.monotonic() == START + 1.0


async def test_outside_a_request_the_retry_keeps_its_own_deadline() -> None:
    clock = FakeClock(autojump=True)
    policy = PolicyRegistry(clock).retry_policy("s3", retry_config())
    calls = Calls()
    with pytest.raises(ConnectionError):
        await policy.call(calls.refused)
    assert calls.count == 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_an_attempt_is_cut_to_what_is_left_and_not_retried() -> None:
    clock = FakeClock()
    policy = PolicyRegistry(clock).retry_policy("s3", retry_config(retry_on=Exception))
    calls = Calls()
    with request_deadline(2.0, clock=clock):
        task = asyncio.create_task(policy.call(calls.hang))
    await clock.advance(2.1)
    with pytest.raises(RequestDeadlineError):
        await finished(task)
    assert calls.count == 1, "a cut attempt is never retried, even with retry_on=Exception"


async def test_an_unbounded_retry_is_bounded_inside_a_request() -> None:
    clock = FakeClock()
    policy = PolicyRegistry(clock).retry_policy("startup", retry_config(timeout=None))
    with request_deadline(2.0, clock=clock):
        task = asyncio.create_task(policy.call(hang))
    await clock.advance(2.1)
    with pytest.raises(RequestDeadlineError):
        await finished(task)


async def test_the_retry_own_deadline_holds_when_it_is_the_earlier() -> None:
    clock = FakeClock()
    policy = PolicyRegistry(clock).retry_policy("db", retry_config(timeout=1.0))
    with request_deadline(10.0, clock=clock):
        task = asyncio.create_task(policy.call(hang))
    await clock.advance(1.1)
    with pytest.raises(RetryDeadlineError):
        await finished(task)


# -- retry(breaker(timeout)) as the backend runs it ---------------------------------------------


def bound_dependency(clock: FakeClock) -> Dependency:
    """The seed's S3 policies: retry deadline 60 s, breaker timeout 20 s."""
    return Dependency("s3", critical=False, retry=retry_config(), breaker=breaker_config())


async def test_a_dependency_call_answers_within_the_request_budget() -> None:
    """The seed's S3 retry deadline (60 s) no longer sits on the request path: a hanging call
    ends at the request's 2 s, after one attempt."""
    clock = FakeClock()
    guarded = bound_dependency(clock).bind(
        check=hang, checker=HealthChecker(clock=clock), registry=PolicyRegistry(clock)
    )
    calls = Calls()
    with request_deadline(2.0, clock=clock):
        task = asyncio.create_task(guarded.call(calls.hang))
    await clock.advance(2.1)
    with pytest.raises(RequestDeadlineError):
        await finished(task)
    assert calls.count == 1
    assert clock.monotonic() < START + 2.2


async def test_a_dependency_call_retries_within_the_budget_and_no_further() -> None:
    clock = FakeClock(autojump=True)
    guarded = bound_dependency(clock).bind(
        check=hang, checker=HealthChecker(clock=clock), registry=PolicyRegistry(clock)
    )
    calls = Calls()
    with request_deadline(4.0, clock=clock), pytest.raises(ConnectionError):
        await guarded.call(calls.refused)
    assert calls.count == 3, "tries at 0 s, 1 s, 3 s; the 4 s wait would pass the deadline"
    assert clock.monotonic() == START + 3.0


async def test_a_generous_budget_changes_nothing() -> None:
    """The same jittered schedule inside a budget that is never reached as outside any."""
    outside, inside = FakeClock(autojump=True), FakeClock(autojump=True)
    for clock in (outside, inside):
        policy = PolicyRegistry(clock).retry_policy(
            "db", retry_config(jitter=Jitter.FULL), rng=random.Random(3)
        )
        scope = request_deadline(3600.0, clock=clock) if clock is inside else nullcontext(0.0)
        with scope, pytest.raises(ConnectionError):
            await policy.call(refused)
    assert len(inside.sleeps) == 4
    assert inside.sleeps == outside.sleeps


async def test_health_checks_started_in_a_request_keep_their_own_timeout() -> None:
    """Checks are background work: a checker started inside a request (here with 0.5 s left)
    still gives each check its own 5 s, through the breaker as the backend runs them."""
    clock = FakeClock()
    checker = HealthChecker(clock=clock)
    results: list[tuple[float, bool]] = []
    checker.add_result_listener(lambda name, result: results.append((clock.monotonic(), result.ok)))
    Dependency("s3", critical=False, retry=None, breaker=breaker_config(), check_timeout=5.0).bind(
        check=hang, checker=checker, registry=PolicyRegistry(clock)
    )
    with request_deadline(0.5, clock=clock):
        await checker.start()
    try:
        await clock.advance(1.0)
        assert results == [], "the check was not cut by the request's deadline"
        await clock.advance(4.2)
        assert [ok for _, ok in results] == [False]
        assert results[0][0] >= START + 5.0
    finally:
        await checker.stop()
