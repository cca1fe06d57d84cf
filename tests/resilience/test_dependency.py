"""One declaration per dependency: guarded calls, health entry and events follow from it."""

from __future__ import annotations

import asyncio

import pytest

from shared.resilience import (
    CheckResult,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    Dependency,
    GuardedDependency,
    HealthChecker,
    HealthStatus,
    Jitter,
    PolicyRegistry,
    RetryConfig,
    RetryDetails,
    StateChange,
)
from shared.resilience.testing import FakeClock, settle

RETRY = RetryConfig(max_attempts=3, base_delay=0.1, max_delay=0.1, jitter=Jitter.NONE, timeout=30.0)
BREAKER = CircuitBreakerConfig(
    failure_threshold=3, recovery_timeout=30.0, success_threshold=2, timeout=10.0
)


class Recorder:
    """A DependencyObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.retries: list[RetryDetails] = []
        self.transitions: list[StateChange] = []
        self.checks: list[tuple[str, CheckResult]] = []

    def on_retry(self, details: RetryDetails) -> None:
        self.retries.append(details)

    def on_transition(self, change: StateChange) -> None:
        self.transitions.append(change)

    def on_check(self, name: str, result: CheckResult) -> None:
        self.checks.append((name, result))


class Backend:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.pings = 0

    async def query(self, value: int) -> int:
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError(111, "Connection refused")
        return value * 2

    async def ping(self) -> None:
        self.pings += 1
        if not self.up:
            raise ConnectionRefusedError(111, "Connection refused")


def state_of(guarded: GuardedDependency) -> CircuitState:
    """The breaker's state, read through a call so mypy does not narrow it between reads."""
    return guarded.breaker.state


def bind(
    clock: FakeClock,
    backend: Backend,
    *,
    retry: RetryConfig | None = RETRY,
    breaker: CircuitBreakerConfig = BREAKER,
) -> tuple[HealthChecker, Recorder, GuardedDependency]:
    checker = HealthChecker(clock=clock)
    recorder = Recorder()
    spec = Dependency("database", critical=True, retry=retry, breaker=breaker, check_interval=10.0)
    guarded = spec.bind(
        check=backend.ping, checker=checker, registry=PolicyRegistry(clock), observer=recorder
    )
    return checker, recorder, guarded


async def test_a_declaration_registers_its_health_check_with_its_breaker() -> None:
    clock, backend = FakeClock(autojump=True), Backend()
    checker, _, _ = bind(clock, backend)
    assert checker.services() == ["database"]
    await checker.check_now()
    health = checker.get_service_metrics("database")
    assert (health.status, health.critical) == (HealthStatus.HEALTHY, True)
    assert health.breaker is not None and health.breaker.name == "database"
    assert backend.pings == 1


async def test_call_retries_through_the_breaker_and_call_once_does_not_retry() -> None:
    clock, backend = FakeClock(autojump=True), Backend()
    _, recorder, guarded = bind(clock, backend)
    assert await guarded.call(backend.query, 21) == 42

    backend.up = False
    with pytest.raises(ConnectionRefusedError):
        await guarded.call(backend.query, 1)
    assert backend.calls == 1 + 3
    assert [d.attempt for d in recorder.retries] == [1, 2, 3]
    assert recorder.retries[-1].gave_up == "attempts_exhausted"
    # Three failures opened the breaker: the next call is refused without reaching the backend.
    assert state_of(guarded) is CircuitState.OPEN
    assert [t.new for t in recorder.transitions] == [CircuitState.OPEN]
    with pytest.raises(CircuitBreakerOpenError) as refused:
        await guarded.call_once(backend.query, 1)
    assert backend.calls == 4
    assert refused.value.retry_after == pytest.approx(30.0)


async def test_an_open_breaker_stops_the_retries_at_once() -> None:
    clock, backend = FakeClock(autojump=True), Backend()
    _, _, guarded = bind(
        clock,
        backend,
        retry=RetryConfig(max_attempts=10, base_delay=0.0, max_delay=0.0, timeout=30.0),
    )
    backend.up = False
    with pytest.raises(CircuitBreakerOpenError):
        await guarded.call(backend.query, 1)
    assert backend.calls == 3, "the 4th attempt was refused by the breaker, and not retried"


async def test_call_once_never_repeats_a_write() -> None:
    clock, backend = FakeClock(autojump=True), Backend()
    _, recorder, guarded = bind(clock, backend)
    backend.up = False
    with pytest.raises(ConnectionRefusedError):
        await guarded.call_once(backend.query, 1)
    assert backend.calls == 1
    assert recorder.retries == []


async def test_health_checks_drive_the_breaker_back_to_closed() -> None:
    clock, backend = FakeClock(), Backend()
    checker, recorder, guarded = bind(clock, backend)
    await checker.start()
    await settle()
    backend.up = False
    await clock.advance(30.0)  # three failed checks open the breaker
    assert state_of(guarded) is CircuitState.OPEN
    assert not guarded.available
    assert guarded.health().status is HealthStatus.UNHEALTHY
    backend.up = True
    await clock.advance(40.0)  # recovery timeout, then two successful trial checks
    assert state_of(guarded) is CircuitState.CLOSED
    assert guarded.health().status is HealthStatus.HEALTHY
    assert [t.new for t in recorder.transitions] == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.CLOSED,
    ]
    assert {name for name, _ in recorder.checks} == {"database"}
    await checker.stop()


async def test_the_layered_path_is_used_when_the_breaker_cannot_bound_the_deadline() -> None:
    """A breaker timeout longer than the retry deadline: the retry must watch its own deadline."""
    clock, backend = FakeClock(), Backend()
    slow_breaker = CircuitBreakerConfig(failure_threshold=3, timeout=60.0)
    short_retry = RetryConfig(max_attempts=3, timeout=5.0)
    _, _, guarded = bind(clock, backend, retry=short_retry, breaker=slow_breaker)

    async def hang() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(guarded.call(hang))
    await clock.advance(5.5)
    with pytest.raises(TimeoutError):
        await task


async def test_a_breaker_timeout_inside_the_fused_path_is_retried() -> None:
    clock, backend = FakeClock(), Backend()
    _, recorder, guarded = bind(clock, backend)
    attempts = 0

    async def slow_once() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.Event().wait()
        return "ok"

    task = asyncio.create_task(guarded.call(slow_once))
    await clock.advance(10.6)  # the breaker's timeout and its watch's resolution
    await clock.advance(0.2)  # the retry's wait
    assert await task == "ok"
    assert attempts == 2
    assert recorder.retries[0].cause.__class__.__name__ == "CallTimeoutError"
    assert guarded.breaker.metrics.timed_out_calls == 1
