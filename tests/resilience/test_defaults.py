"""The process's default registry and health checker, and an application installing its own."""

from __future__ import annotations

import pytest

from shared.resilience import (
    DATABASE_RETRY_CONFIG,
    CircuitBreakerConfig,
    HealthChecker,
    PolicyRegistry,
    as_process_defaults,
    default_registry,
    get_circuit_breaker,
    retry_database_operation,
)
from shared.resilience.health_check import get_health_checker
from shared.resilience.registry import install_default_registry
from shared.resilience.testing import FakeClock


def test_the_latest_installation_still_in_place_is_the_default_whatever_the_order() -> None:
    own_registry, own_checker = default_registry(), get_health_checker()
    first, second = PolicyRegistry(), PolicyRegistry()
    first_checker = HealthChecker()
    with as_process_defaults(registry=first, checker=first_checker):
        withdraw_second = install_default_registry(second)
        assert default_registry() is second
        assert get_health_checker() is first_checker
        withdraw_second()
        assert default_registry() is first
    assert (default_registry(), get_health_checker()) == (own_registry, own_checker)

    # Withdrawn out of order: the first app stops while the second still runs.
    withdraw_first = install_default_registry(first)
    withdraw_second = install_default_registry(second)
    withdraw_first()
    assert default_registry() is second
    withdraw_second()
    assert default_registry() is own_registry


def test_get_circuit_breaker_reads_the_installed_registry() -> None:
    app = PolicyRegistry()
    breaker = app.circuit_breaker("payments")
    with as_process_defaults(registry=app, checker=HealthChecker()):
        assert get_circuit_breaker("payments") is breaker
    assert get_circuit_breaker("payments") is not breaker, "the process's own again, once withdrawn"
    assert app.find_circuit_breaker("payments") is breaker


def test_get_circuit_breaker_with_another_configuration_is_the_one_in_force(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = PolicyRegistry()
    breaker = app.circuit_breaker("payments", CircuitBreakerConfig(failure_threshold=7))
    with as_process_defaults(registry=app, checker=HealthChecker()):
        for _ in range(3):
            assert get_circuit_breaker("payments", CircuitBreakerConfig(failure_threshold=2)) is (
                breaker
            )
    assert breaker.config.failure_threshold == 7
    ignored = [r for r in caplog.records if getattr(r, "event", None) == "breaker_config_ignored"]
    assert len(ignored) == 1


async def test_the_preset_retries_use_the_installed_registrys_clock_and_budget() -> None:
    clock = FakeClock(autojump=True)
    app = PolicyRegistry(clock)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return "ok"

    with as_process_defaults(registry=app, checker=HealthChecker()):
        assert await retry_database_operation(flaky) == "ok"
    assert clock.sleeps, "the retry waited on the app's clock"
    assert DATABASE_RETRY_CONFIG.budget is not None
    assert app.retry_budget("database", DATABASE_RETRY_CONFIG.budget).calls == 1
