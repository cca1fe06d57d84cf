"""Health checker: background checks, statuses, statistics, reports and their renderings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    HealthChecker,
    HealthStatus,
    UnknownServiceError,
    get_health_checker,
)
from shared.resilience.testing import FakeClock, settle


class Probe:
    """A health check whose outcome the test sets; counts how often it ran."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: BaseException | None = None
        self.hang = False
        self.duration = 0.0
        self.clock: FakeClock | None = None

    async def __call__(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.duration and self.clock is not None:
            await self.clock.sleep(self.duration)
        if self.error is not None:
            raise self.error


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def checker(clock: FakeClock) -> AsyncIterator[HealthChecker]:
    checker = HealthChecker(clock=clock)
    yield checker
    await checker.stop()


async def test_a_service_is_unknown_until_its_first_check(checker: HealthChecker) -> None:
    probe = Probe()
    checker.register("database", probe, critical=True)
    assert checker.service_status("database") is HealthStatus.UNKNOWN
    assert checker.report().message == "Health checks have not completed yet"
    await checker.start()
    await checker.wait_first_round()
    assert probe.calls == 1
    assert checker.service_status("database") is HealthStatus.HEALTHY


async def test_checks_run_on_their_interval_and_reading_never_runs_one(
    checker: HealthChecker, clock: FakeClock
) -> None:
    probe = Probe()
    checker.register("database", probe, critical=True, interval=10.0)
    await checker.start()
    await settle()
    for _ in range(50):
        checker.report(with_details=True)
        checker.is_service_available("database")
        checker.get_service_metrics("database")
    assert probe.calls == 1
    await clock.advance(9.9)
    assert probe.calls == 1
    await clock.advance(0.1)
    assert probe.calls == 2
    await clock.advance(30.0)
    assert probe.calls == 5


async def test_failures_degrade_then_make_a_service_unhealthy(
    checker: HealthChecker, clock: FakeClock
) -> None:
    probe = Probe()
    checker.register("database", probe, critical=True, interval=1.0, unhealthy_after=3)
    await checker.start()
    await settle()
    assert checker.service_status("database") is HealthStatus.HEALTHY
    probe.error = ConnectionRefusedError(111, "Connection refused")
    await clock.advance(1.0)
    assert checker.service_status("database") is HealthStatus.DEGRADED
    assert checker.is_service_available("database")
    await clock.advance(1.0)
    assert checker.service_status("database") is HealthStatus.DEGRADED
    await clock.advance(1.0)
    assert checker.service_status("database") is HealthStatus.UNHEALTHY
    assert not checker.is_service_available("database")
    health = checker.get_service_metrics("database")
    assert health.consecutive_failures == 3
    assert health.reason == "3 failed checks in a row"
    probe.error = None
    await clock.advance(1.0)
    assert checker.service_status("database") is HealthStatus.HEALTHY


async def test_a_service_that_never_succeeded_is_unhealthy_at_its_first_failure(
    checker: HealthChecker,
) -> None:
    probe = Probe()
    probe.error = ConnectionRefusedError(111, "Connection refused")
    checker.register("database", probe, critical=True)
    await checker.check_now()
    assert checker.service_status("database") is HealthStatus.UNHEALTHY


async def test_a_check_that_overruns_its_timeout_fails_as_a_timeout(
    checker: HealthChecker, clock: FakeClock
) -> None:
    probe = Probe()
    probe.hang = True
    checker.register("s3", probe, critical=False, interval=10.0, timeout=2.0)
    await checker.start()
    await settle()
    assert checker.service_status("s3") is HealthStatus.UNKNOWN
    await clock.advance(2.2)
    health = checker.get_service_metrics("s3")
    assert health.last_error == "CallTimeoutError: timed out after 2 s"
    assert health.status is HealthStatus.UNHEALTHY
    assert health.response_time is not None and 2.0 <= health.response_time <= 2.2


async def test_errors_are_sanitised_so_no_host_or_credential_leaks(checker: HealthChecker) -> None:
    probe = Probe()
    probe.error = ConnectionRefusedError(
        111, "Connection refused", "postgresql://questcity:hunter2@db.internal:5432"
    )
    checker.register("database", probe, critical=True)
    await checker.check_now()
    detailed = str(checker.report(with_details=True).detailed())
    assert "ConnectionRefusedError: Connection refused" in detailed
    for secret in ("hunter2", "db.internal", "5432", "questcity:"):
        assert secret not in detailed

    probe.error = RuntimeError("could not connect to server at 10.0.0.12")
    await checker.check_now()
    assert checker.get_service_metrics("database").last_error == "RuntimeError"


async def test_an_open_breaker_makes_a_service_unhealthy_and_half_open_degraded(
    checker: HealthChecker, clock: FakeClock
) -> None:
    breaker = CircuitBreaker("database", CircuitBreakerConfig(recovery_timeout=30.0), clock=clock)
    checker.register("database", Probe(), critical=True, breaker=breaker)
    await checker.check_now()
    assert checker.service_status("database") is HealthStatus.HEALTHY
    breaker.force_open()
    assert checker.service_status("database") is HealthStatus.UNHEALTHY
    assert checker.get_service_metrics("database").reason == "circuit breaker open"
    breaker.reset()
    assert checker.service_status("database") is HealthStatus.HEALTHY
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await breaker.call(_fail)
    assert state_of(breaker) is CircuitState.OPEN
    await clock.advance(30.0)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert checker.service_status("database") is HealthStatus.DEGRADED


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """Read through a call, so mypy does not narrow the state between reads."""
    return breaker.state


async def _fail() -> None:
    raise ConnectionError


async def test_slow_responses_degrade_a_service(checker: HealthChecker, clock: FakeClock) -> None:
    probe = Probe()
    probe.clock = clock
    probe.duration = 0.8
    checker.register("s3", probe, critical=False, slow_after=0.5, timeout=5.0)
    task = asyncio.create_task(checker.check_now())
    await clock.advance(1.0)
    await task
    health = checker.get_service_metrics("s3")
    assert (health.status, health.reason) == (HealthStatus.DEGRADED, "slow responses")


async def test_a_flapping_service_is_degraded(checker: HealthChecker) -> None:
    probe = Probe()
    checker.register("s3", probe, critical=False)
    for outcome in [True, False, True, False, True]:
        probe.error = None if outcome else ConnectionError()
        await checker.check_now()
    assert checker.get_service_metrics("s3").reason == "flapping"
    for _ in range(10):
        probe.error = None
        await checker.check_now()
    assert checker.service_status("s3") is HealthStatus.HEALTHY


async def test_availability_and_response_time_come_from_the_history(
    checker: HealthChecker, clock: FakeClock
) -> None:
    probe = Probe()
    probe.clock = clock
    checker.register("database", probe, critical=True, timeout=5.0)
    for duration, error in [(0.1, None), (0.3, None), (0.2, ConnectionError()), (0.2, None)]:
        probe.duration, probe.error = duration, error
        task = asyncio.create_task(checker.check_now())
        await clock.advance(duration)
        await task
    health = checker.get_service_metrics("database")
    assert health.checks == 4
    assert health.availability == 75.0
    assert health.average_response_time == pytest.approx(0.2)
    assert health.response_time == pytest.approx(0.2)
    assert (health.last_error, health.failures) == (None, 1)  # healthy again: history only
    assert health.last_check_at == clock.wall()


async def test_history_is_bounded(clock: FakeClock) -> None:
    checker = HealthChecker(clock=clock, history_size=10)
    checker.register("database", Probe(), critical=True)
    for _ in range(25):
        await checker.check_now()
    assert checker.get_service_metrics("database").checks == 10


async def test_the_report_aggregates_by_criticality(checker: HealthChecker) -> None:
    database, s3 = Probe(), Probe()
    checker.register("database", database, critical=True)
    checker.register("s3", s3, critical=False)
    await checker.check_now()
    report = checker.report()
    assert (report.status, report.http_status) == (HealthStatus.HEALTHY, 200)
    assert report.summary() == {
        "status": "healthy",
        "timestamp": report.timestamp,
        "services": {"total": 2, "healthy": 2, "degraded": 0, "unhealthy": 0},
        "message": "All systems operational",
    }

    s3.error = ConnectionError()
    await checker.check_now("s3")
    report = checker.report()
    assert (report.status, report.http_status) == (HealthStatus.DEGRADED, 200)
    assert report.counts() == {"total": 2, "healthy": 1, "degraded": 1, "unhealthy": 0}
    for _ in range(2):
        await checker.check_now("s3")
    report = checker.report()
    assert (report.status, report.http_status) == (HealthStatus.DEGRADED, 200), "s3 is not critical"
    assert report.counts() == {"total": 2, "healthy": 1, "degraded": 0, "unhealthy": 1}
    assert report.message == "Running with reduced functionality: s3"

    database.error = ConnectionError()
    for _ in range(3):
        await checker.check_now("database")
    report = checker.report()
    assert (report.status, report.http_status) == (HealthStatus.UNHEALTHY, 503)
    assert report.message == "Critical services unavailable: database"


async def test_the_detailed_report_and_health_json(
    checker: HealthChecker, clock: FakeClock
) -> None:
    breaker = CircuitBreaker("database", clock=clock)
    checker.register(
        "database",
        Probe(),
        critical=True,
        breaker=breaker,
        details=lambda: {"pool_size": 20, "checked_out": 3},
    )
    s3 = Probe()
    s3.error = ConnectionError()
    checker.register("s3", s3, critical=False)
    await checker.check_now()
    detailed = checker.report(with_details=True).detailed()
    database = detailed["checks"]["database"]  # type: ignore[index]
    assert database["status"] == "healthy"
    assert database["circuit_breaker"]["state"] == "closed"
    assert database["details"] == {"pool_size": 20, "checked_out": 3}
    assert database["availability_percent"] == 100.0
    assert "details" not in checker.report().detailed()["checks"]["database"]  # type: ignore[index]

    document = checker.report().health_json(version="1")
    assert document["status"] == "warn"
    assert document["checks"]["database:responseTime"][0]["status"] == "pass"  # type: ignore[index]
    assert document["checks"]["s3:responseTime"][0]["status"] == "fail"  # type: ignore[index]
    assert document["checks"]["s3:responseTime"][0]["time"].endswith("Z")  # type: ignore[index]


async def test_a_failing_details_provider_is_reported_not_raised(checker: HealthChecker) -> None:
    def broken() -> dict[str, object]:
        raise OSError(5, "Input/output error")

    checker.register("database", Probe(), critical=True, details=broken)
    await checker.check_now()
    assert checker.get_service_metrics("database").details == {
        "error": "OSError: Input/output error"
    }


async def test_stop_cancels_the_checks_and_registration_while_running_starts_one(
    checker: HealthChecker, clock: FakeClock
) -> None:
    first, late = Probe(), Probe()
    checker.register("database", first, critical=True, interval=1.0)
    await checker.start()
    await settle()
    checker.register("s3", late, critical=False, interval=1.0)
    await settle()
    assert (first.calls, late.calls) == (1, 1)
    await checker.stop()
    await clock.advance(10.0)
    assert (first.calls, late.calls) == (1, 1)


async def test_result_listeners_see_every_result_and_cannot_break_the_checker(
    checker: HealthChecker,
) -> None:
    seen: list[tuple[str, bool]] = []

    def broken(name: str, ok: object) -> None:
        raise RuntimeError("exporter down")

    checker.add_result_listener(lambda name, result: seen.append((name, result.ok)))
    checker.add_result_listener(broken)
    checker.register("database", Probe(), critical=True)
    await checker.check_now()
    await checker.check_now()
    assert seen == [("database", True), ("database", True)]


def test_registration_is_validated(checker: HealthChecker) -> None:
    checker.register("database", Probe(), critical=True)
    with pytest.raises(ValueError, match="already registered"):
        checker.register("database", Probe(), critical=True)
    with pytest.raises(ValueError, match="interval and timeout must be > 0"):
        checker.register("s3", Probe(), critical=False, interval=0)
    with pytest.raises(UnknownServiceError):
        checker.service_status("redis")


def test_the_process_has_one_default_checker() -> None:
    assert get_health_checker() is get_health_checker()
