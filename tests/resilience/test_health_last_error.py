"""A service's last error (#14): it carries when it happened, and it clears once the service is
healthy again — a healthy row showed "ObjectStoreError" (a failure at start-up) for ever, and
"CircuitBreakerOpenError" after recovery. The history of failures stays, as a counter."""

from __future__ import annotations

import pytest

from shared.resilience import HealthChecker, HealthStatus
from shared.resilience.testing import FakeClock
from tests.resilience.test_health_check import Probe, checker, clock

__all__ = ["checker", "clock"]  # the fixtures, shared with the health checker's own tests


async def test_the_last_error_carries_its_time_and_clears_when_healthy(
    checker: HealthChecker, clock: FakeClock
) -> None:
    probe = Probe()
    checker.register("s3", probe, critical=False, unhealthy_after=3)
    await checker.check_now()
    probe.error = ConnectionError()
    await clock.advance(10)
    failed_at = clock.wall()
    await checker.check_now()

    failing = checker.get_service_metrics("s3")
    assert failing.status is HealthStatus.DEGRADED
    assert (failing.last_error, failing.last_error_at) == ("ConnectionError", failed_at)
    entry = checker.report(with_details=True).detailed()["checks"]["s3"]  # type: ignore[index]
    assert (entry["last_error"], entry["last_error_at"], entry["failed_checks"]) == (
        "ConnectionError",
        failed_at,
        1,
    )

    probe.error = None
    await clock.advance(10)
    await checker.check_now()
    healthy = checker.get_service_metrics("s3")
    assert healthy.status is HealthStatus.HEALTHY
    assert (healthy.last_error, healthy.last_error_at) == (None, None)
    assert healthy.failures == 1
    assert healthy.availability == pytest.approx(200 / 3)
    entry = checker.report(with_details=True).detailed()["checks"]["s3"]  # type: ignore[index]
    assert (entry["last_error"], entry["last_error_at"], entry["failed_checks"]) == (None, None, 1)


async def test_a_new_failure_replaces_the_last_error_and_its_time(
    checker: HealthChecker, clock: FakeClock
) -> None:
    probe = Probe()
    checker.register("database", probe, critical=True, unhealthy_after=2)
    probe.error = TimeoutError()
    await checker.check_now()
    await clock.advance(5)
    probe.error = ConnectionError()
    await checker.check_now()

    health = checker.get_service_metrics("database")
    assert health.status is HealthStatus.UNHEALTHY
    assert (health.last_error, health.last_error_at, health.failures) == (
        "ConnectionError",
        clock.wall(),
        2,
    )
    # The summary a probe reads pays for no details: no error there.
    assert checker.report().services[0].last_error is None
