"""One declaration per external dependency.

The seed ends with a checklist for adding a dependency: retry, circuit breaker, health check,
registration in the health checker, degradation logic, monitoring. A :class:`Dependency` is that
checklist as one value; :meth:`Dependency.bind` wires it into a checker and a registry, and the
:class:`GuardedDependency` it returns is the only way the application calls the dependency::

    DATABASE = Dependency("database", critical=True,
                          retry=DATABASE_RETRY_CONFIG, breaker=DATABASE_CIRCUIT_BREAKER_CONFIG)

    database = DATABASE.bind(check=ping, checker=checker, registry=registry, observer=metrics)
    rows = await database.call(fetch_rows, query)        # retry(breaker(timeout(call)))
    await database.call_once(insert_row, row)            # breaker(timeout(call)), no retry
    if not database.available: ...                       # degradation logic reads this

Adding Redis or a payment API is one more declaration and one ``bind``. Inside a request's
deadline (:func:`~shared.resilience.request_deadline.request_deadline`) both call forms run within
what is left of it; health checks, being background work, keep their own timeouts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

from shared.resilience.circuit_breaker import (
    BreakerCall,
    CircuitBreaker,
    CircuitBreakerConfig,
    StateChange,
)
from shared.resilience.compose import call_path
from shared.resilience.health_check import DetailsProvider, HealthCheck, HealthChecker
from shared.resilience.health_report import CheckResult, HealthStatus, ServiceHealth
from shared.resilience.registry import PolicyRegistry, default_registry
from shared.resilience.retry import RetryConfig, RetryDetails, RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")


class DependencyObserver(Protocol):
    """Where a dependency's events go: Prometheus, structured logs."""

    def on_retry(self, details: RetryDetails) -> None: ...

    def on_transition(self, change: StateChange) -> None: ...

    def on_check(self, name: str, result: CheckResult) -> None: ...


@dataclass(frozen=True, slots=True)
class Dependency:
    name: str
    critical: bool
    """A critical dependency that is unhealthy makes the whole service unhealthy."""
    retry: RetryConfig | None
    breaker: CircuitBreakerConfig
    check_interval: float = 10.0
    check_timeout: float = 5.0
    unhealthy_after: int = 3
    slow_after: float | None = None
    check_through_breaker: bool = True
    """Health checks count as calls, so that they drive the breaker's recovery trials."""

    def bind(
        self,
        *,
        check: HealthCheck,
        checker: HealthChecker,
        registry: PolicyRegistry | None = None,
        details: DetailsProvider | None = None,
        observer: DependencyObserver | None = None,
    ) -> GuardedDependency:
        reg = registry if registry is not None else default_registry()
        breaker = reg.circuit_breaker(self.name, self.breaker)
        retry_policy: RetryPolicy | None = None
        if self.retry is not None:
            retry_config = self.retry
            if observer is not None:
                retry_config = dataclasses.replace(
                    retry_config, hooks=(*retry_config.hooks, observer.on_retry)
                )
            retry_policy = reg.retry_policy(self.name, retry_config)
        if observer is not None:
            breaker.add_listener(observer.on_transition)
            on_check = observer.on_check
            checker.add_result_listener(
                lambda name, result: on_check(name, result) if name == self.name else None
            )

        async def guarded_check() -> object:
            return await breaker.call(check)

        checker.register(
            self.name,
            guarded_check if self.check_through_breaker else check,
            critical=self.critical,
            interval=self.check_interval,
            timeout=self.check_timeout,
            breaker=breaker,
            unhealthy_after=self.unhealthy_after,
            slow_after=self.slow_after,
            details=details,
        )
        return GuardedDependency(self, breaker, retry_policy, checker)


class GuardedDependency:
    """A bound :class:`Dependency`: the calls, the breaker, and the health, in one place."""

    __slots__ = ("_checker", "breaker", "call", "retry_policy", "spec")

    def __init__(
        self,
        spec: Dependency,
        breaker: CircuitBreaker,
        retry_policy: RetryPolicy | None,
        checker: HealthChecker,
    ) -> None:
        self.spec = spec
        self.breaker = breaker
        self.retry_policy = retry_policy
        self._checker = checker
        self.call: BreakerCall = call_path(retry=retry_policy, breaker=breaker)
        """``await dependency.call(fn, *args, **kwargs)``: run an operation that is safe to
        repeat, as ``retry(breaker(timeout(fn)))``."""

    @property
    def name(self) -> str:
        return self.spec.name

    async def call_once(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run an operation that must not be repeated blindly: ``breaker(timeout(fn))`` only."""
        return await self.breaker.call(fn, *args, **kwargs)

    @property
    def available(self) -> bool:
        """False when the dependency is known to be down (breaker open, or unhealthy)."""
        return self._checker.is_service_available(self.spec.name)

    @property
    def status(self) -> HealthStatus:
        return self._checker.service_status(self.spec.name)

    def health(self) -> ServiceHealth:
        return self._checker.get_service_metrics(self.spec.name)
