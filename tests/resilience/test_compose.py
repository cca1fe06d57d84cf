"""Retry and breaker composed: ``retry(breaker(timeout(call)))`` in every form it is written.

The forms: ``@retry_with_backoff`` stacked over ``@circuit_breaker`` (made one path, not two
layers), the same two nested by hand (a wrapper the retry decorator cannot see through),
``Dependency.call``, and ``compose(fn, ...)``. Each must give the same outcomes.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import shared.resilience
from shared.resilience import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    Dependency,
    HealthChecker,
    Jitter,
    PolicyRegistry,
    RequestDeadlineError,
    RetryConfig,
    as_process_defaults,
    circuit_breaker,
    compose,
    default_registry,
    request_deadline,
    retry_with_backoff,
)
from shared.resilience.testing import FakeClock

RETRY = RetryConfig(
    max_attempts=3, base_delay=0.1, max_delay=0.1, jitter=Jitter.NONE, timeout=30.0, name="db"
)
BREAKER = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30.0, timeout=10.0)

Call = Callable[[], Coroutine[Any, Any, str]]
Form = Callable[[PolicyRegistry, Callable[[], Awaitable[str]]], Call]


def stacked(registry: PolicyRegistry, fn: Callable[[], Awaitable[str]]) -> Call:
    return retry_with_backoff(RETRY, registry=registry)(
        circuit_breaker("db", BREAKER, registry=registry)(fn)
    )


def nested(registry: PolicyRegistry, fn: Callable[[], Awaitable[str]]) -> Call:
    breaker = registry.circuit_breaker("db", BREAKER)

    async def through_breaker() -> str:  # not a decorator's wrapper: the retry nests around it
        return await breaker.call(fn)

    return retry_with_backoff(RETRY, registry=registry)(through_breaker)


def dependency(registry: PolicyRegistry, fn: Callable[[], Awaitable[str]]) -> Call:
    guarded = Dependency("db", critical=True, retry=RETRY, breaker=BREAKER).bind(
        check=fn, checker=HealthChecker(clock=registry.clock), registry=registry
    )

    async def call() -> str:
        return await guarded.call(fn)

    return call


def composed(registry: PolicyRegistry, fn: Callable[[], Awaitable[str]]) -> Call:
    policy = registry.retry_policy("db", RETRY)
    return compose(fn, retry=policy, breaker=registry.circuit_breaker("db", BREAKER))


FORMS = pytest.mark.parametrize("form", [stacked, nested, dependency, composed])


class Service:
    """Fails ``failures`` times (with ``error``), hangs when ``hang`` says so, then answers."""

    def __init__(self, failures: int = 0, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.hang_first = False

    async def __call__(self) -> str:
        self.calls += 1
        if self.hang_first and self.calls == 1:
            await asyncio.Event().wait()
        if self.calls <= self.failures:
            raise self.error("down")
        return "ok"


@FORMS
async def test_failures_are_retried_through_the_breaker_which_counts_each_attempt(
    form: Form,
) -> None:
    registry = PolicyRegistry(FakeClock(autojump=True))
    service = Service(failures=2)
    assert await form(registry, service)() == "ok"
    metrics = registry.circuit_breaker("db").metrics
    assert (service.calls, metrics.failed_calls, metrics.successful_calls) == (3, 2, 1)


@FORMS
async def test_an_open_breaker_ends_the_retries_and_is_never_retried(form: Form) -> None:
    registry = PolicyRegistry(FakeClock(autojump=True))
    service = Service(failures=100)
    call = form(registry, service)
    with pytest.raises(ConnectionError):
        await call()  # three attempts, three failures: the breaker opens on the last
    with pytest.raises(CircuitBreakerOpenError):
        await call()
    assert service.calls == 3
    assert registry.circuit_breaker("db").metrics.rejected_calls == 1


@FORMS
async def test_a_breaker_timeout_is_a_failure_and_is_retried(form: Form) -> None:
    clock = FakeClock()
    registry = PolicyRegistry(clock)
    service = Service()
    service.hang_first = True
    task = asyncio.create_task(form(registry, service)())
    await clock.advance(10.6)  # the breaker's timeout and its watch's resolution
    await clock.advance(0.2)  # the retry's wait
    assert await task == "ok"
    metrics = registry.circuit_breaker("db").metrics
    assert (service.calls, metrics.timed_out_calls, metrics.failed_calls) == (2, 1, 1)


@FORMS
async def test_cancellation_passes_through_and_is_not_retried(form: Form) -> None:
    clock = FakeClock()
    registry = PolicyRegistry(clock)
    service = Service()
    service.hang_first = True
    task = asyncio.create_task(form(registry, service)())
    await clock.advance(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await clock.advance(60.0)
    metrics = registry.circuit_breaker("db").metrics
    assert (service.calls, metrics.cancelled_calls, metrics.failed_calls) == (1, 1, 0)


@FORMS
async def test_the_request_deadline_cuts_the_call_and_is_not_retried(form: Form) -> None:
    clock = FakeClock()
    registry = PolicyRegistry(clock)
    service = Service()
    service.hang_first = True
    call = form(registry, service)

    async def in_request() -> str:
        with request_deadline(2.0, clock=clock):
            return await call()

    task = asyncio.create_task(in_request())
    await clock.advance(2.5)
    with pytest.raises(RequestDeadlineError):
        await task
    assert service.calls == 1
    # Cut after 2 s, long enough to have answered: one path counts it as the dependency's timeout.
    # Nested by hand, the retry's own watch cuts it first and the breaker sees a cancellation.
    metrics = registry.circuit_breaker("db").metrics
    expected = (0, 1) if form is nested else (1, 0)
    assert (metrics.failed_calls, metrics.cancelled_calls) == expected


@FORMS
async def test_errors_the_retry_does_not_cover_reach_the_caller_at_once(form: Form) -> None:
    registry = PolicyRegistry(FakeClock(autojump=True))
    service = Service(failures=1, error=KeyError)
    with pytest.raises(KeyError):
        await form(registry, service)()
    assert service.calls == 1


@FORMS
async def test_a_spent_request_deadline_starts_nothing(form: Form) -> None:
    clock = FakeClock()
    registry = PolicyRegistry(clock)
    service = Service()
    call = form(registry, service)
    with request_deadline(1.0, clock=clock):
        await clock.advance(1.0)
        with pytest.raises(RequestDeadlineError):
            await call()
    assert service.calls == 0


async def test_stacked_decorators_run_as_one_path_not_two_layers() -> None:
    """The cost of a call is mostly its frames: stacked, the pair adds as many as
    ``Dependency.call`` from a function does (a wrapper and the breaker's path), where nesting
    adds the retry's and the breaker's layers each."""
    here = sys._getframe()
    depths: list[int] = []

    async def target() -> str:
        frame = sys._getframe()
        depth = 0
        while frame is not here:
            assert frame.f_back is not None
            frame, depth = frame.f_back, depth + 1
        depths.append(depth)
        return "ok"

    for form in (stacked, nested, dependency):
        assert await form(PolicyRegistry(FakeClock()), target)() == "ok"
    stacked_depth, nested_depth, dependency_depth = depths
    assert stacked_depth == dependency_depth
    assert nested_depth > stacked_depth


async def test_a_wrapper_that_copied_a_breakers_attributes_is_not_skipped() -> None:
    """``functools.wraps`` copies the breaker wrapper's attributes onto a decorator stacked on
    it; the retry must still call through that decorator."""
    registry = PolicyRegistry(FakeClock(autojump=True))
    logged: list[str] = []
    service = Service()

    def logging_decorator(fn: Callable[[], Awaitable[str]]) -> Callable[[], Awaitable[str]]:
        @functools.wraps(fn)
        async def logged_call() -> str:
            logged.append("call")
            return await fn()

        return logged_call

    call = retry_with_backoff(RETRY, registry=registry)(
        logging_decorator(circuit_breaker("db", BREAKER, registry=registry)(service))
    )
    assert await call() == "ok"
    assert logged == ["call"]


async def test_decorators_follow_the_default_registry_installed_after_them() -> None:
    first, second = PolicyRegistry(FakeClock()), PolicyRegistry(FakeClock())
    service = Service()
    with as_process_defaults(registry=first, checker=HealthChecker()):
        call = retry_with_backoff(RETRY)(circuit_breaker("db", BREAKER)(service))
        assert await call() == "ok"
    with as_process_defaults(registry=second, checker=HealthChecker()):
        assert await call() == "ok"
        assert call.circuit_breaker is second.circuit_breaker("db")  # type: ignore[attr-defined]
    assert first.circuit_breaker("db").metrics.successful_calls == 1
    assert second.circuit_breaker("db").metrics.successful_calls == 1
    assert default_registry() is not second


async def test_a_breaker_decorator_clashing_with_the_installed_breaker_uses_it_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seed-style ``@circuit_breaker("database", PRESET)`` inside an app whose breaker differs:
    one breaker per name, the app's, and one warning (not an error on every call)."""
    service = Service()
    with as_process_defaults(registry=PolicyRegistry(FakeClock()), checker=HealthChecker()):
        call = circuit_breaker("db", BREAKER)(service)
    app = PolicyRegistry(FakeClock())
    in_force = app.circuit_breaker("db", CircuitBreakerConfig(failure_threshold=1))
    with as_process_defaults(registry=app, checker=HealthChecker()):
        assert await call() == "ok"
        assert await call() == "ok"
        assert call.circuit_breaker is in_force  # type: ignore[attr-defined]
    assert in_force.metrics.successful_calls == 2
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "breaker_config_ignored"]
    assert len(warnings) == 1 and "'db'" in warnings[0].getMessage()


def test_a_breaker_decorator_clashing_in_its_own_registry_is_an_error_at_once() -> None:
    reg = PolicyRegistry(FakeClock())
    reg.circuit_breaker("db", CircuitBreakerConfig(failure_threshold=1))
    with pytest.raises(ValueError, match="another configuration"):
        circuit_breaker("db", BREAKER, registry=reg)


def test_the_breaker_module_knows_nothing_of_retries() -> None:
    """Composition lives in compose.py; the breaker offers call_path(on_failure=...) instead."""
    source = Path(shared.resilience.__file__).with_name("circuit_breaker.py").read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not {"shared.resilience.retry", "shared.resilience.compose"} & imported
