"""The health checker: background checks of each dependency, and reports read without waiting.

Checks run in background tasks, each on its own interval and bounded by its own timeout; reading a
status or a report never runs a check, so a probe never waits on a database. A service's status:

- ``unknown`` before its first result;
- ``unhealthy`` when its breaker is OPEN, when ``unhealthy_after`` checks in a row failed, or when
  it has failed every check so far;
- ``degraded`` when its last check failed (fewer than ``unhealthy_after`` in a row), its breaker is
  HALF_OPEN, its last check was slower than ``slow_after``, or it is flapping (4 or more flips
  between success and failure among its last 10 results);
- ``healthy`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from shared.resilience.circuit_breaker import CircuitBreaker, CircuitState
from shared.resilience.clock import SYSTEM_CLOCK, Clock
from shared.resilience.deadline import (
    DeadlineWatch,
    as_coroutine,
    no_outside_cancellation,
    resolution_for,
)
from shared.resilience.errors import CallTimeoutError
from shared.resilience.health_report import CheckResult, HealthReport, HealthStatus, ServiceHealth
from shared.resilience.request_deadline import detached_context
from shared.resilience.sanitize import sanitize_error

logger = logging.getLogger("shared.resilience.health")

HealthCheck = Callable[[], Awaitable[object]]
DetailsProvider = Callable[[], Mapping[str, object]]
ResultListener = Callable[[str, CheckResult], None]

_FLAP_WINDOW = 10
_FLAP_FLIPS = 4


class UnknownServiceError(KeyError):
    """No service of that name is registered."""


@dataclass(slots=True)
class _Service:
    name: str
    check: HealthCheck
    critical: bool
    interval: float
    timeout: float
    breaker: CircuitBreaker | None
    unhealthy_after: int
    slow_after: float | None
    details: DetailsProvider | None
    watch: DeadlineWatch
    history: deque[CheckResult]
    consecutive_failures: int = 0
    failures: int = 0
    """Failed checks since start: the history of failures is a counter, not the last error."""
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    task: asyncio.Task[None] | None = None
    first_result: asyncio.Event = field(default_factory=asyncio.Event)


class HealthChecker:
    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, history_size: int = 100) -> None:
        if history_size < _FLAP_WINDOW:
            raise ValueError(f"history_size must be at least {_FLAP_WINDOW}, got {history_size}")
        self._clock = clock
        self._history_size = history_size
        self._services: dict[str, _Service] = {}
        self._listeners: list[ResultListener] = []
        self._running = False

    # -- registration and lifecycle -------------------------------------------------------------

    def register(
        self,
        name: str,
        check: HealthCheck,
        *,
        critical: bool,
        interval: float = 10.0,
        timeout: float = 5.0,
        breaker: CircuitBreaker | None = None,
        unhealthy_after: int = 3,
        slow_after: float | None = None,
        details: DetailsProvider | None = None,
    ) -> None:
        """Watch ``name`` by awaiting ``check()`` every ``interval`` s; raising means failing."""
        if name in self._services:
            raise ValueError(f"health check {name!r} is already registered")
        if not interval > 0 or not timeout > 0:
            raise ValueError(f"{name}: interval and timeout must be > 0")
        if unhealthy_after < 1:
            raise ValueError(f"{name}: unhealthy_after must be >= 1")
        service = _Service(
            name=name,
            check=check,
            critical=critical,
            interval=interval,
            timeout=timeout,
            breaker=breaker,
            unhealthy_after=unhealthy_after,
            slow_after=slow_after,
            details=details,
            watch=DeadlineWatch(self._clock, resolution_for(timeout)),
            history=deque(maxlen=self._history_size),
        )
        self._services[name] = service
        if self._running:
            self._spawn(service)

    def add_result_listener(self, listener: ResultListener) -> None:
        """Called with every check result (for metrics and logs)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Start every service's background checks; each runs once at once, then on its interval."""
        if self._running:
            return
        self._running = True
        for service in self._services.values():
            self._spawn(service)

    async def stop(self) -> None:
        self._running = False
        tasks = [s.task for s in self._services.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for service in self._services.values():
            service.task = None

    async def wait_first_round(self) -> None:
        """Return once every registered service has at least one result."""
        for service in list(self._services.values()):
            await service.first_result.wait()

    async def check_now(self, name: str | None = None) -> None:
        """Run the check of ``name`` (or of every service) now, and record the results."""
        services = [self._service(name)] if name is not None else list(self._services.values())
        await asyncio.gather(*(self._run_check(s) for s in services))

    def _spawn(self, service: _Service) -> None:
        # Background work: checks keep their own timeouts even when started from a request.
        service.task = asyncio.get_running_loop().create_task(
            self._loop(service), name=f"health-check:{service.name}", context=detached_context()
        )

    async def _loop(self, service: _Service) -> None:
        while True:
            await self._run_check(service)
            await self._clock.sleep(service.interval)

    async def _run_check(self, service: _Service) -> None:
        clock = self._clock
        started = clock.monotonic()
        error: str | None = None
        fired = False
        try:
            call = as_coroutine(service.check())
            service.watch.watch(call, started + service.timeout, started)
            try:
                await call
            finally:
                fired = service.watch.release(call)
        except asyncio.CancelledError:
            if not (fired and no_outside_cancellation()):
                raise
            error = sanitize_error(CallTimeoutError(service.name, service.timeout))
        except Exception as exc:
            error = sanitize_error(exc)
        result = CheckResult(
            ok=error is None, at=clock.wall(), duration=clock.monotonic() - started, error=error
        )
        self._record(service, result)

    def _record(self, service: _Service, result: CheckResult) -> None:
        service.history.append(result)
        if result.ok:
            service.consecutive_failures = 0
            service.last_success_at = result.at
        else:
            service.consecutive_failures += 1
            service.failures += 1
            service.last_error, service.last_error_at = result.error, result.at
        service.first_result.set()
        log = logger.info if result.ok else logger.warning
        log(
            "health check %s: %s in %.1f ms%s",
            service.name,
            "ok" if result.ok else "failed",
            result.duration * 1000,
            f" ({result.error})" if result.error else "",
            extra={
                "event": "health_check",
                "service": service.name,
                "ok": result.ok,
                "duration_ms": round(result.duration * 1000, 3),
                "error": result.error,
                "consecutive_failures": service.consecutive_failures,
            },
        )
        for listener in list(self._listeners):
            try:
                listener(service.name, result)
            except Exception:
                logger.exception("health result listener %r failed", listener)

    # -- reading --------------------------------------------------------------------------------

    def services(self) -> list[str]:
        return list(self._services)

    def is_service_available(self, name: str) -> bool:
        """False only when the service is known to be down (unhealthy); unknown counts as up."""
        return self._status(self._service(name))[0] is not HealthStatus.UNHEALTHY

    def get_service_metrics(self, name: str) -> ServiceHealth:
        return self._health(self._service(name), with_details=True)

    def service_status(self, name: str) -> HealthStatus:
        return self._status(self._service(name))[0]

    def report(self, *, with_details: bool = False) -> HealthReport:
        """The aggregate; ``with_details`` adds history statistics, breaker metrics and the
        services' own figures (availability and the like are None without it)."""
        services = tuple(
            self._health(s, with_details=with_details) for s in self._services.values()
        )
        return HealthReport.aggregate(services, self._clock.wall())

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise UnknownServiceError(name) from None

    def _status(self, service: _Service) -> tuple[HealthStatus, str | None]:
        breaker_state = service.breaker.state if service.breaker is not None else None
        if breaker_state is CircuitState.OPEN:
            return HealthStatus.UNHEALTHY, "circuit breaker open"
        history = service.history
        if not history:
            return HealthStatus.UNKNOWN, "not checked yet"
        failures = service.consecutive_failures
        if failures >= service.unhealthy_after:
            return HealthStatus.UNHEALTHY, f"{failures} failed checks in a row"
        if failures and service.last_success_at is None:
            return HealthStatus.UNHEALTHY, "no check has succeeded yet"
        if failures:
            return HealthStatus.DEGRADED, f"{failures} failed check(s) in a row"
        if breaker_state is CircuitState.HALF_OPEN:
            return HealthStatus.DEGRADED, "recovering (circuit breaker half-open)"
        if service.slow_after is not None and history[-1].duration > service.slow_after:
            return HealthStatus.DEGRADED, "slow responses"
        if _flips(history) >= _FLAP_FLIPS:
            return HealthStatus.DEGRADED, "flapping"
        return HealthStatus.HEALTHY, None

    def _health(self, service: _Service, *, with_details: bool) -> ServiceHealth:
        status, reason = self._status(service)
        shows_error = status is not HealthStatus.HEALTHY
        history = service.history
        last = history[-1] if history else None
        count = len(history)
        details: Mapping[str, object] = {}
        if with_details and service.details is not None:
            try:
                details = service.details()
            except Exception as exc:
                details = {"error": sanitize_error(exc)}
        return ServiceHealth(
            name=service.name,
            status=status,
            critical=service.critical,
            reason=reason,
            last_check_at=last.at if last else None,
            last_success_at=service.last_success_at,
            response_time=last.duration if last else None,
            consecutive_failures=service.consecutive_failures,
            # History statistics cost a scan of the history: only reports asking for details
            # (operators) pay it, never a probe reading the summary.
            availability=100.0 * sum(r.ok for r in history) / count
            if count and with_details
            else None,
            average_response_time=sum(r.duration for r in history) / count
            if count and with_details
            else None,
            checks=count,
            failures=service.failures,
            # The last error while it matters: once the service is healthy again it is history
            # (counted in ``failures``), not a label left on a healthy row for ever.
            last_error=service.last_error if with_details and shows_error else None,
            last_error_at=service.last_error_at if with_details and shows_error else None,
            breaker=service.breaker.metrics if with_details and service.breaker else None,
            details=details,
        )


def _flips(history: deque[CheckResult]) -> int:
    recent = list(history)[-_FLAP_WINDOW:]
    return sum(1 for a, b in itertools.pairwise(recent) if a.ok != b.ok)


_own_checker: HealthChecker | None = None
_installed: list[tuple[object, HealthChecker]] = []
_installing = threading.Lock()  # as registry._installing: apps may start in several threads


def get_health_checker() -> HealthChecker:
    """The process's health checker: the one installed last by :func:`install_default_checker`
    and not yet withdrawn (a running backend's), else the process's own, made on first use
    (nothing starts until ``start()``)."""
    global _own_checker
    if _installed:
        return _installed[-1][1]
    if _own_checker is None:
        _own_checker = HealthChecker()
    return _own_checker


def install_default_checker(checker: HealthChecker) -> Callable[[], None]:
    """Make ``checker`` what :func:`get_health_checker` returns until the returned function is
    called; installations stack as :func:`~shared.resilience.registry.install_default_registry`'s
    do."""
    token = object()
    with _installing:
        _installed.append((token, checker))

    def withdraw() -> None:
        with _installing:
            _installed[:] = [entry for entry in _installed if entry[0] is not token]

    return withdraw
