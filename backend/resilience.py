"""The backend's external dependencies, each declared once (the seed's checklist as values).

The breakers count only infrastructure failures: connection and timeout errors. Business errors
(a taken username, a missing quest) and load shedding (pool exhausted) are neither failures nor
successes.
"""

from __future__ import annotations

import dataclasses

from backend.settings import Settings
from shared.resilience import (
    DATABASE_CIRCUIT_BREAKER_CONFIG,
    DATABASE_RETRY_CONFIG,
    S3_CIRCUIT_BREAKER_CONFIG,
    S3_RETRY_CONFIG,
    Dependency,
    GuardedDependency,
)

_INFRASTRUCTURE = (ConnectionError, TimeoutError)


def database_dependency(settings: Settings) -> Dependency:
    return Dependency(
        "database",
        critical=True,
        retry=DATABASE_RETRY_CONFIG,
        breaker=dataclasses.replace(
            DATABASE_CIRCUIT_BREAKER_CONFIG,
            failure_on=_INFRASTRUCTURE,
            timeout=settings.db_timeout,
        ),
        check_interval=settings.health_interval,
        check_timeout=min(5.0, settings.db_timeout),
        slow_after=1.0,
    )


def s3_dependency(settings: Settings) -> Dependency:
    return Dependency(
        "s3",
        critical=False,
        retry=S3_RETRY_CONFIG,
        breaker=dataclasses.replace(
            S3_CIRCUIT_BREAKER_CONFIG,
            failure_on=_INFRASTRUCTURE,
            timeout=settings.s3_timeout,
        ),
        check_interval=settings.health_interval,
        check_timeout=min(5.0, settings.s3_timeout),
        slow_after=2.0,
    )


class DependencyGateway:
    """The one object through which the backend reaches a dependency (``Database``,
    ``ObjectStorage``): it owns the bound :class:`Dependency`, which the composition root makes
    after the gateway exists, because the dependency's health check is the gateway's own method."""

    _guarded: GuardedDependency | None = None

    def attach(self, guarded: GuardedDependency) -> None:
        """Wire the bound dependency (``create_app`` does, once)."""
        self._guarded = guarded

    @property
    def guarded(self) -> GuardedDependency:
        if self._guarded is None:
            raise RuntimeError(f"{type(self).__name__}.attach() was not called")
        return self._guarded
