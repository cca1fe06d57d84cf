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
