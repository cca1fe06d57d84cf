"""Prometheus metrics: live breaker, health and pool series, and the observer's counters.

Every test renders the registry to the text format and parses it back, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from backend.observability import Metrics, classify_outcome, render
from shared.resilience import (
    CallTimeoutError,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    Dependency,
    DependencyObserver,
    HealthChecker,
    Jitter,
    PolicyRegistry,
    RetryConfig,
    RetryPolicy,
)
from shared.resilience.testing import FakeClock

BREAKER = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30.0, success_threshold=1)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the rendered text, by (sample name, labels)."""
    body, content_type = render(registry)
    assert content_type.startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return scrape(registry).get((metric, frozenset(labels.items())))


def names(registry: CollectorRegistry) -> set[str]:
    return {name for name, _ in scrape(registry)}


async def succeed() -> str:
    return "ok"


async def refuse() -> str:
    raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def policies(clock: FakeClock) -> PolicyRegistry:
    return PolicyRegistry(clock)


@pytest.fixture
def metrics(registry: CollectorRegistry, policies: PolicyRegistry) -> Metrics:
    return Metrics(registry, policies=policies)


def test_the_observer_is_a_dependency_observer(metrics: Metrics) -> None:
    observer: DependencyObserver = metrics.observer  # checked by mypy
    assert callable(observer.on_retry)


async def test_a_breaker_driven_open_shows_in_the_state_gauge_and_transition_counter(
    registry: CollectorRegistry, policies: PolicyRegistry, metrics: Metrics, clock: FakeClock
) -> None:
    breaker = policies.circuit_breaker("database", BREAKER)
    breaker.add_listener(metrics.observer.on_transition)
    assert value(registry, "questcity_circuit_breaker_state", name="database") == 0

    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await breaker.call(refuse)
    with pytest.raises(CircuitBreakerOpenError):
        await breaker.call(succeed)

    samples = scrape(registry)

    def get(metric: str, /, **labels: str) -> float | None:
        return samples.get((metric, frozenset(labels.items())))

    assert get("questcity_circuit_breaker_state", name="database") == 2
    transitions = "questcity_circuit_breaker_transitions_total"
    assert get(transitions, name="database", from_state="closed", to_state="open") == 1
    calls = "questcity_circuit_breaker_calls_total"
    assert get(calls, name="database", outcome="failure") == 3
    assert get(calls, name="database", outcome="rejected") == 1
    assert get(calls, name="database", outcome="success") == 0


async def test_the_state_is_read_live_at_scrape_time(
    registry: CollectorRegistry, policies: PolicyRegistry, metrics: Metrics, clock: FakeClock
) -> None:
    breaker = policies.circuit_breaker("s3", BREAKER)
    breaker.add_listener(metrics.observer.on_transition)
    breaker.force_open("maintenance")
    assert value(registry, "questcity_circuit_breaker_state", name="s3") == 2
    breaker.reset()
    assert value(registry, "questcity_circuit_breaker_state", name="s3") == 0

    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await breaker.call(refuse)
    await clock.advance(30.0)
    # Past its recovery timeout an OPEN breaker reads HALF_OPEN; the same scrape already counts
    # that transition (the live series are collected before the counters).
    samples = scrape(registry)
    transitions = "questcity_circuit_breaker_transitions_total"
    assert samples[("questcity_circuit_breaker_state", frozenset({("name", "s3")}))] == 1
    half_open = frozenset({("name", "s3"), ("from_state", "open"), ("to_state", "half_open")})
    assert samples[(transitions, half_open)] == 1

    assert await breaker.call(succeed) == "ok"
    assert value(registry, "questcity_circuit_breaker_state", name="s3") == 0
    assert value(registry, transitions, name="s3", from_state="half_open", to_state="closed") == 1


async def test_call_outcomes_are_disjoint_and_sum_to_the_breakers_total(
    registry: CollectorRegistry, policies: PolicyRegistry, metrics: Metrics, clock: FakeClock
) -> None:
    breaker = policies.circuit_breaker(
        "quests", CircuitBreakerConfig(failure_threshold=10, timeout=1.0, ignore_on=KeyError)
    )

    async def missing() -> str:
        raise KeyError("quest 42")

    async def hang() -> str:
        await clock.sleep(5.0)
        return "late"

    assert await breaker.call(succeed) == "ok"
    with pytest.raises(ConnectionRefusedError):
        await breaker.call(refuse)
    with pytest.raises(KeyError):
        await breaker.call(missing)
    pending = asyncio.ensure_future(breaker.call(hang))
    await clock.advance(1.5)
    with pytest.raises(CallTimeoutError):
        await pending

    samples = scrape(registry)
    outcomes = {
        dict(labels)["outcome"]: count
        for (name, labels), count in samples.items()
        if name == "questcity_circuit_breaker_calls_total"
    }
    assert outcomes == {
        "success": 1,
        "failure": 1,
        "timeout": 1,
        "rejected": 0,
        "ignored": 1,
        "cancelled": 0,
    }
    assert sum(outcomes.values()) == breaker.metrics.total_calls


async def test_retries_and_give_ups_are_counted_through_the_retry_hook(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    config = RetryConfig(
        max_attempts=3,
        base_delay=0.1,
        max_delay=0.1,
        jitter=Jitter.NONE,
        hooks=(metrics.observer.on_retry,),
    )
    policy = RetryPolicy(config, name="s3", clock=FakeClock(autojump=True))
    with pytest.raises(ConnectionRefusedError):
        await policy.call(refuse)
    assert value(registry, "questcity_retries_total", policy="s3") == 2
    give_ups = "questcity_retry_give_ups_total"
    assert value(registry, give_ups, policy="s3", reason="attempts_exhausted") == 1

    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionResetError("reset by peer")
        return "ok"

    assert await policy.call(flaky) == "ok"
    assert value(registry, "questcity_retries_total", policy="s3") == 3
    assert value(registry, give_ups, policy="s3", reason="attempts_exhausted") == 1


async def test_a_bound_dependency_feeds_every_series_through_the_observer(
    registry: CollectorRegistry, policies: PolicyRegistry, clock: FakeClock
) -> None:
    checker = HealthChecker(clock=clock)
    metrics = Metrics(registry, policies=policies, checker=checker)
    up = False

    async def ping() -> None:
        if not up:
            raise ConnectionRefusedError(111, "Connection refused")

    spec = Dependency(
        "database",
        critical=True,
        retry=RetryConfig(max_attempts=2, base_delay=0.0, max_delay=0.0, jitter=Jitter.NONE),
        breaker=CircuitBreakerConfig(failure_threshold=5, recovery_timeout=30.0),
        unhealthy_after=2,
    )
    database = spec.bind(check=ping, checker=checker, registry=policies, observer=metrics.observer)
    with pytest.raises(ConnectionRefusedError):
        await database.call(refuse)
    await checker.check_now()
    await checker.check_now()
    up = True
    await checker.check_now()

    samples = scrape(registry)

    def get(metric: str, /, **labels: str) -> float | None:
        return samples.get((metric, frozenset(labels.items())))

    assert get("questcity_retries_total", policy="database") == 1
    assert (
        get("questcity_retry_give_ups_total", policy="database", reason="attempts_exhausted") == 1
    )
    assert get("questcity_health_check_duration_seconds_count", service="database") == 3
    assert get("questcity_health_check_failures_total", service="database") == 2
    assert get("questcity_circuit_breaker_calls_total", name="database", outcome="failure") == 4
    assert get("questcity_circuit_breaker_state", name="database") == 0
    assert get("questcity_health_check_status", service="database", status="healthy") == 1


async def test_health_status_is_one_for_the_current_status_only(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    checker = HealthChecker(clock=clock)
    metrics = Metrics(registry, checker=checker)
    checker.add_result_listener(metrics.observer.on_check)

    async def down() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    checker.register("database", down, critical=True)
    checker.register("s3", succeed, critical=False)

    def statuses(service: str) -> dict[str, float]:
        return {
            dict(labels)["status"]: v
            for (name, labels), v in scrape(registry).items()
            if name == "questcity_health_check_status" and dict(labels)["service"] == service
        }

    assert statuses("database") == {"healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 1}
    await checker.check_now()
    assert statuses("database") == {"healthy": 0, "degraded": 0, "unhealthy": 1, "unknown": 0}
    assert statuses("s3") == {"healthy": 1, "degraded": 0, "unhealthy": 0, "unknown": 0}
    assert value(registry, "questcity_health_check_failures_total", service="database") == 1
    # A service that has not failed has its failure series at 0 (so rate() works from the start).
    assert value(registry, "questcity_health_check_failures_total", service="s3") == 0
    assert value(registry, "questcity_health_check_duration_seconds_count", service="s3") == 1


def test_pool_gauges_are_read_from_the_callable_at_scrape_time(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert "questcity_db_pool_size" not in names(registry)
    figures = {"size": 20, "checked_out": 3, "overflow": 0, "waiting": 0, "max_overflow": 30}

    def pool_stats() -> Mapping[str, int]:
        return figures

    metrics.set_pool_stats(pool_stats)
    assert value(registry, "questcity_db_pool_size") == 20
    assert value(registry, "questcity_db_pool_checked_out") == 3
    figures.update(checked_out=50, overflow=30, waiting=4)
    assert value(registry, "questcity_db_pool_checked_out") == 50
    assert value(registry, "questcity_db_pool_overflow") == 30
    assert value(registry, "questcity_db_pool_waiting") == 4

    del figures["waiting"]
    assert "questcity_db_pool_waiting" not in names(registry)
    assert "questcity_db_pool_max_overflow" not in names(registry)


def test_a_failing_source_is_left_out_and_the_scrape_still_answers(
    registry: CollectorRegistry,
    policies: PolicyRegistry,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    policies.circuit_breaker("database", BREAKER)

    def broken() -> Mapping[str, int]:
        raise RuntimeError("engine disposed")

    metrics.set_pool_stats(broken)
    with caplog.at_level(logging.WARNING, logger="backend.observability"):
        samples = names(registry)
    assert "questcity_circuit_breaker_state" in samples
    assert "questcity_db_pool_size" not in samples
    (record,) = caplog.records
    assert getattr(record, "event") == "metrics_source_failed"  # noqa: B009
    assert getattr(record, "source") == "database pool"  # noqa: B009


def test_pool_exhaustion_and_s3_operations_are_counted(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    assert value(registry, "questcity_db_pool_exhausted_total") == 0
    metrics.on_pool_exhausted()
    metrics.on_pool_exhausted()
    assert value(registry, "questcity_db_pool_exhausted_total") == 2

    metrics.record_s3_operation("put_object", "success")
    metrics.record_s3_operation("put_object", classify_outcome(ConnectionResetError()))
    metrics.record_s3_operation("get_object", classify_outcome(None))
    s3 = "questcity_s3_operations_total"
    assert value(registry, s3, operation="put_object", outcome="success") == 1
    assert value(registry, s3, operation="put_object", outcome="failure") == 1
    assert value(registry, s3, operation="get_object", outcome="success") == 1
    with pytest.raises(ValueError, match="unknown S3 outcome"):
        metrics.record_s3_operation("put_object", "exploded")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "success"),
        (CircuitBreakerOpenError("s3", 12.0, "open"), "rejected"),
        (CallTimeoutError("s3", 10.0), "timeout"),
        (TimeoutError(), "timeout"),
        (ConnectionRefusedError(), "failure"),
        (RuntimeError("boom"), "failure"),
    ],
)
def test_classify_outcome(error: BaseException | None, outcome: str) -> None:
    assert classify_outcome(error) == outcome


def test_each_app_has_its_own_registry_and_the_global_one_is_untouched() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    one, two = Metrics(first), Metrics(second)
    one.on_pool_exhausted()
    assert value(first, "questcity_db_pool_exhausted_total") == 1
    assert value(second, "questcity_db_pool_exhausted_total") == 0
    assert two.registry is second
    global_names = {
        sample.name for family in prometheus_client.REGISTRY.collect() for sample in family.samples
    }
    assert not any(name.startswith("questcity_") for name in global_names)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(first)


def test_render_gives_the_text_format_and_its_content_type(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    body, content_type = render(registry)
    assert content_type == prometheus_client.CONTENT_TYPE_LATEST
    assert b"# TYPE questcity_http_request_duration_seconds histogram" in body
