"""Retry: backoff schedules, deadlines, what is and is not retried, budgets, hooks and logs."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import pytest

from shared.resilience import (
    DATABASE_RETRY_CONFIG,
    S3_RETRY_CONFIG,
    CallTimeoutError,
    CircuitBreakerOpenError,
    Jitter,
    PolicyRegistry,
    RetryBudgetConfig,
    RetryConfig,
    RetryDeadlineError,
    RetryDetails,
    RetryPolicy,
    retry_with_backoff,
)
from shared.resilience.backoff import capped_exponential
from shared.resilience.testing import FakeClock, set_testing, settle, waits_disabled


class Flaky:
    """Fails with ``error`` for the first ``failures`` calls, then returns ``"ok"``."""

    def __init__(self, failures: int, error: Callable[[], BaseException] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error()
        return "ok"


def policy(
    clock: FakeClock, *, seed: int = 7, budget: RetryBudgetConfig | None = None, **config: object
) -> RetryPolicy:
    registry = PolicyRegistry(clock)
    cfg = RetryConfig(**{"timeout": None, **config, "budget": budget})  # type: ignore[arg-type]
    return registry.retry_policy("test", cfg, rng=random.Random(seed))


# -- backoff schedules -----------------------------------------------------------------------


async def test_no_jitter_doubles_from_base_and_is_capped_by_max_delay() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=7, base_delay=0.5, max_delay=6.0, jitter=Jitter.NONE)
    assert await retry.call(Flaky(6)) == "ok"
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]


async def test_full_jitter_draws_uniformly_below_the_capped_exponential() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, seed=42, max_attempts=6, base_delay=1.0, max_delay=10.0)
    assert await retry.call(Flaky(5)) == "ok"
    draws = random.Random(42)
    assert clock.sleeps == [draws.uniform(0.0, ceiling) for ceiling in (1.0, 2.0, 4.0, 8.0, 10.0)]
    assert clock.sleeps == [
        0.6394267984578837,
        0.05002151044533387,
        1.100117273476477,
        1.785685905190582,
        7.364712141640124,
    ]


async def test_equal_jitter_keeps_half_of_the_capped_exponential() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, seed=3, max_attempts=5, base_delay=1.0, max_delay=5.0, jitter="equal")
    assert await retry.call(Flaky(4)) == "ok"
    draws = random.Random(3)
    assert clock.sleeps == [c / 2 + draws.uniform(0.0, c / 2) for c in (1.0, 2.0, 4.0, 5.0)]
    assert all(wait >= c / 2 for wait, c in zip(clock.sleeps, (1.0, 2.0, 4.0, 5.0), strict=True))


async def test_decorrelated_jitter_grows_from_the_previous_wait() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(
        clock, seed=5, max_attempts=5, base_delay=1.0, max_delay=20.0, jitter=Jitter.DECORRELATED
    )
    assert await retry.call(Flaky(4)) == "ok"
    draws = random.Random(5)
    expected, previous = [], 1.0
    for _ in range(4):
        previous = min(20.0, draws.uniform(1.0, max(1.0, min(20.0, previous * 3))))
        expected.append(previous)
    assert clock.sleeps == expected
    assert all(1.0 <= wait <= 20.0 for wait in clock.sleeps)


def test_capped_exponential_does_not_overflow_at_huge_attempt_numbers() -> None:
    assert capped_exponential(0.5, 10.0, 1) == 0.5
    assert capped_exponential(0.5, 10.0, 10_000) == 10.0
    assert capped_exponential(0.5, 10.0, 2**62) == 10.0


async def test_thousands_of_attempts_never_overflow() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=2_000, base_delay=0.1, max_delay=1.0, jitter=Jitter.NONE)
    assert await retry.call(Flaky(1_999)) == "ok"
    assert clock.sleeps[-1] == 1.0


# -- deadlines -------------------------------------------------------------------------------


async def test_the_overall_deadline_is_never_overrun_by_a_wait() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(
        clock, max_attempts=100, base_delay=1.0, max_delay=1.0, jitter="none", timeout=4.5
    )
    start = clock.monotonic()
    flaky = Flaky(1_000)
    with pytest.raises(ConnectionError) as raised:
        await retry.call(flaky)
    assert clock.monotonic() - start <= 4.5
    # Waits of 1 s at t=0,1,2,3 fit; the one at t=4 would reach 5 > 4.5, so it is cut.
    assert clock.sleeps == [1.0, 1.0, 1.0, 1.0]
    assert flaky.calls == 5
    assert "gave up after 5 attempt(s)" in "".join(raised.value.__notes__)
    assert "(deadline)" in "".join(raised.value.__notes__)


async def test_an_attempt_still_running_at_the_deadline_is_cancelled() -> None:
    clock = FakeClock()
    retry = policy(clock, max_attempts=3, timeout=2.0)
    started = asyncio.Event()
    cancelled = False

    async def hang() -> None:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise

    task = asyncio.create_task(retry.call(hang))
    await started.wait()
    await clock.advance(1.9)
    assert not task.done()
    await clock.advance(0.2)  # past the deadline, within the watch's resolution
    with pytest.raises(RetryDeadlineError):
        await task
    assert cancelled
    assert clock.monotonic() <= 1_000 + 2.0 + retry._watch.resolution + 0.1


async def test_a_timed_out_attempt_is_retried_when_attempt_timeout_is_set() -> None:
    clock = FakeClock()
    retry = policy(
        clock, max_attempts=3, attempt_timeout=1.0, timeout=10.0, base_delay=0.0, max_delay=0.0
    )
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()
        return "ok"

    task = asyncio.create_task(retry.call(slow_then_fast))
    await clock.advance(1.2)
    assert await task == "ok"
    assert calls == 2


async def test_cancellation_from_outside_is_not_turned_into_a_timeout() -> None:
    clock = FakeClock()
    retry = policy(clock, max_attempts=3, timeout=5.0)
    hanging = Flaky(0)

    async def hang() -> None:
        hanging.calls += 1
        await asyncio.Event().wait()

    task = asyncio.create_task(retry.call(hang))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hanging.calls == 1


# -- what is retried -------------------------------------------------------------------------


async def test_by_default_only_connection_and_timeout_errors_are_retried() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=3)
    assert await retry.call(Flaky(2, ConnectionResetError)) == "ok"
    assert await retry.call(Flaky(2, TimeoutError)) == "ok"
    business = Flaky(1, lambda: ValueError("no such quest"))
    with pytest.raises(ValueError, match="no such quest"):
        await retry.call(business)
    assert business.calls == 1


async def test_retry_on_accepts_a_predicate() -> None:
    clock = FakeClock(autojump=True)

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, LookupError) and "transient" in str(exc)

    retry = policy(clock, max_attempts=3, retry_on=transient)
    assert await retry.call(Flaky(2, lambda: KeyError("transient"))) == "ok"
    permanent = Flaky(2, lambda: KeyError("permanent"))
    with pytest.raises(KeyError):
        await retry.call(permanent)
    assert permanent.calls == 1


async def test_a_circuit_breaker_refusal_is_never_retried() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=5, retry_on=Exception)
    refused = Flaky(5, lambda: CircuitBreakerOpenError("database", 12.0, "open"))
    with pytest.raises(CircuitBreakerOpenError):
        await retry.call(refused)
    assert refused.calls == 1


async def test_cancellation_raised_inside_an_attempt_is_never_retried() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=5, retry_on=BaseException)
    cancelled = Flaky(5, asyncio.CancelledError)
    with pytest.raises(asyncio.CancelledError):
        await retry.call(cancelled)
    assert cancelled.calls == 1


async def test_the_last_error_is_raised_unchanged_after_the_last_attempt() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=3)
    errors = iter([ConnectionError("first"), ConnectionError("second"), ConnectionError("third")])

    async def failing() -> None:
        raise next(errors)

    with pytest.raises(ConnectionError, match="third") as raised:
        await retry.call(failing)
    assert "gave up after 3 attempt(s)" in raised.value.__notes__[0]
    assert "attempts_exhausted" in raised.value.__notes__[0]


async def test_a_retry_after_on_the_error_lengthens_the_wait() -> None:
    class Throttled(ConnectionError):
        retry_after = 7.0

    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=2, base_delay=0.1, max_delay=1.0)
    assert await retry.call(Flaky(1, Throttled)) == "ok"
    assert clock.sleeps == [7.0]


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    class Throttled(ConnectionError):
        retry_after = 60.0

    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=5, timeout=30.0)
    with pytest.raises(Throttled):
        await retry.call(Flaky(1, Throttled))
    assert clock.sleeps == []


# -- concurrency -----------------------------------------------------------------------------


async def test_concurrent_callers_keep_their_own_attempt_counters() -> None:
    """tenacity#93: a retry object shared by callers shared one attempt counter."""
    clock = FakeClock()
    retry = policy(clock, max_attempts=3, base_delay=1.0, max_delay=1.0, jitter="none")
    callers = [Flaky(2) for _ in range(20)]
    tasks = [asyncio.create_task(retry.call(flaky)) for flaky in callers]
    await clock.advance(1.0)
    await clock.advance(2.0)
    assert [await task for task in tasks] == ["ok"] * 20
    assert [flaky.calls for flaky in callers] == [3] * 20


# -- budgets ---------------------------------------------------------------------------------


async def test_the_retry_budget_stops_a_retry_storm() -> None:
    clock = FakeClock(autojump=True)
    budget = RetryBudgetConfig(ratio=0.1, min_per_second=0.5, ttl=10.0)  # floor: 5 per 10 s
    retry = policy(clock, budget=budget, max_attempts=3, base_delay=0.0, max_delay=0.0)
    down = Flaky(10_000)
    for _ in range(100):
        with pytest.raises(ConnectionError):
            await retry.call(down)
    # 100 calls may retry 0.1 * 100 + 5 = 15 times in all; without a budget it would be 200.
    retries = down.calls - 100
    assert 10 <= retries <= 15
    # Once the budget is spent, each failing call gives up after its first attempt.
    assert retry.budget is not None and retry.budget.exhausted >= 100 - retries


async def test_the_budget_refills_as_time_passes() -> None:
    clock = FakeClock(autojump=True)
    budget = RetryBudgetConfig(ratio=0.0, min_per_second=0.2, ttl=10.0)  # 2 retries per 10 s
    retry = policy(clock, budget=budget, max_attempts=2, base_delay=0.0, max_delay=0.0)
    outcomes = []
    for _ in range(4):
        flaky = Flaky(1)
        try:
            await retry.call(flaky)
            outcomes.append("retried")
        except ConnectionError:
            outcomes.append("refused")
    assert outcomes == ["retried", "retried", "refused", "refused"]
    await clock.advance(25.0)
    assert await retry.call(Flaky(1)) == "ok"


async def test_policies_of_one_name_share_one_budget() -> None:
    registry = PolicyRegistry(FakeClock())
    config = RetryConfig(budget=RetryBudgetConfig())
    first = registry.retry_policy("database", config)
    second = registry.retry_policy("database", config)
    assert first.budget is second.budget
    with pytest.raises(ValueError, match="another configuration"):
        registry.retry_policy("database", RetryConfig(budget=RetryBudgetConfig(ratio=0.5)))


# -- hooks, logs, testing switch -------------------------------------------------------------


async def test_hooks_get_frozen_details_of_each_retry_and_the_give_up() -> None:
    seen: list[RetryDetails] = []

    def broken_hook(details: RetryDetails) -> None:
        raise RuntimeError("a broken metrics exporter must not break calls")

    clock = FakeClock(autojump=True)
    retry = policy(
        clock, max_attempts=3, jitter="none", base_delay=1.0, hooks=(seen.append, broken_hook)
    )
    with pytest.raises(ConnectionError):
        await retry.call(Flaky(5))
    assert [(d.attempt, d.wait, d.gave_up) for d in seen] == [
        (1, 1.0, None),
        (2, 2.0, None),
        (3, 0.0, "attempts_exhausted"),
    ]
    assert all(isinstance(d.cause, ConnectionError) and d.name == "test" for d in seen)
    with pytest.raises(AttributeError):
        seen[0].attempt = 9  # type: ignore[misc]


async def test_every_retry_is_logged_with_structured_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=2, jitter="none", base_delay=0.25)
    caplog.set_level(logging.DEBUG, logger="shared.resilience.retry")
    with pytest.raises(ConnectionError):
        await retry.call(Flaky(5, lambda: ConnectionRefusedError(111, "refused by 10.1.2.3")))
    events = [(r.event, r.attempt, r.wait, r.cause) for r in caplog.records]  # type: ignore[attr-defined]
    assert events == [
        ("retry", 1, 0.25, "ConnectionRefusedError"),
        ("retry_gave_up", 2, 0.0, "ConnectionRefusedError"),
    ]
    assert all(r.policy == "test" for r in caplog.records)  # type: ignore[attr-defined]


async def test_set_testing_turns_waits_off_but_keeps_attempts() -> None:
    clock = FakeClock(autojump=True)
    retry = policy(clock, max_attempts=4, jitter="none", base_delay=5.0, max_delay=5.0)
    set_testing(True)
    try:
        flaky = Flaky(3)
        assert await retry.call(flaky) == "ok"
    finally:
        set_testing(False)
    assert flaky.calls == 4
    assert clock.sleeps == [0.0, 0.0, 0.0]
    with waits_disabled():
        await retry.call(Flaky(1))
    assert clock.sleeps[-1] == 0.0
    await retry.call(Flaky(1))
    assert clock.sleeps[-1] == 5.0


# -- forms and configuration -----------------------------------------------------------------


async def test_the_decorator_keeps_the_function_and_retries_it() -> None:
    registry = PolicyRegistry(FakeClock(autojump=True))
    calls = 0

    @retry_with_backoff(RetryConfig(max_attempts=3, timeout=None), registry=registry)
    async def fetch_quest(quest_id: int, *, city: str) -> str:
        """Fetch one quest."""
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError
        return f"{quest_id}@{city}"

    assert await fetch_quest(7, city="Kazan") == "7@Kazan"
    assert fetch_quest.__name__ == "fetch_quest"
    assert fetch_quest.__doc__ == "Fetch one quest."
    assert fetch_quest.retry_policy.name.endswith("fetch_quest")  # type: ignore[attr-defined]


def test_the_presets_have_the_seed_values() -> None:
    assert (
        DATABASE_RETRY_CONFIG.max_attempts,
        DATABASE_RETRY_CONFIG.base_delay,
        DATABASE_RETRY_CONFIG.max_delay,
        DATABASE_RETRY_CONFIG.timeout,
    ) == (3, 0.5, 10.0, 30.0)
    assert (
        S3_RETRY_CONFIG.max_attempts,
        S3_RETRY_CONFIG.base_delay,
        S3_RETRY_CONFIG.max_delay,
        S3_RETRY_CONFIG.timeout,
    ) == (5, 1.0, 30.0, 60.0)
    assert DATABASE_RETRY_CONFIG.budget is not None and S3_RETRY_CONFIG.budget is not None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"base_delay": 5.0, "max_delay": 1.0}, "max_delay"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"attempt_timeout": -1.0}, "attempt_timeout must be > 0"),
        ({"jitter": "sideways"}, "sideways"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    config: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RetryConfig(**config)  # type: ignore[arg-type]


def test_retry_on_must_be_exception_types_or_a_predicate() -> None:
    with pytest.raises(TypeError, match="exception types"):
        RetryConfig(retry_on=(ValueError, "ConnectionError"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not an exception type"):
        RetryConfig(retry_on=int)  # type: ignore[arg-type]


async def test_an_attempt_timeout_error_names_the_policy() -> None:
    error = CallTimeoutError("database", 2.5)
    assert isinstance(error, TimeoutError)
    assert str(error) == "database: call timed out after 2.5 s"
