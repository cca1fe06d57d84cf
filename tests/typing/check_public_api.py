"""Type-checked only (mypy --strict runs over tests/): the public API keeps signatures.

Each ``# type: ignore[...]`` below marks a call that must be rejected; mypy's warn_unused_ignores
(part of --strict) fails the run if one of them ever type-checks.
"""

from __future__ import annotations

from typing import assert_type

from shared.resilience import (
    DATABASE_CIRCUIT_BREAKER_CONFIG,
    DATABASE_RETRY_CONFIG,
    S3_CIRCUIT_BREAKER_CONFIG,
    S3_RETRY_CONFIG,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    Dependency,
    HealthChecker,
    RetryConfig,
    circuit_breaker,
    get_circuit_breaker,
    retry_database_operation,
    retry_s3_operation,
    retry_with_backoff,
)
from shared.resilience.health_check import get_health_checker


async def load_quest(quest_id: int, *, city: str) -> dict[str, str]:
    return {"id": str(quest_id), "city": city}


@retry_with_backoff(RetryConfig(max_attempts=5))
async def decorated_retry(quest_id: int, *, city: str) -> dict[str, str]:
    return await load_quest(quest_id, city=city)


@circuit_breaker("database", DATABASE_CIRCUIT_BREAKER_CONFIG)
async def decorated_breaker(quest_id: int) -> list[int]:
    return [quest_id]


async def check_call_forms() -> None:
    assert_type(await decorated_retry(1, city="Kazan"), dict[str, str])
    assert_type(await decorated_breaker(3), list[int])
    assert_type(await retry_database_operation(load_quest, 1, city="Kazan"), dict[str, str])
    assert_type(await retry_s3_operation(load_quest, 2, city="Perm"), dict[str, str])

    breaker: CircuitBreaker = get_circuit_breaker("database", DATABASE_CIRCUIT_BREAKER_CONFIG)
    assert_type(await breaker.call(load_quest, 1, city="Kazan"), dict[str, str])
    assert_type(breaker.state, CircuitState)

    checker = get_health_checker()
    assert_type(checker, HealthChecker)
    assert_type(checker.is_service_available("database"), bool)

    database = Dependency(
        "database",
        critical=True,
        retry=DATABASE_RETRY_CONFIG,
        breaker=DATABASE_CIRCUIT_BREAKER_CONFIG,
    ).bind(check=_ping, checker=checker)
    assert_type(await database.call(load_quest, 1, city="Kazan"), dict[str, str])
    assert_type(await database.call_once(load_quest, 1, city="Kazan"), dict[str, str])

    assert_type(S3_RETRY_CONFIG, RetryConfig)
    assert_type(S3_CIRCUIT_BREAKER_CONFIG, CircuitBreakerConfig)
    try:
        pass
    except CircuitBreakerOpenError as refused:
        assert_type(refused.retry_after, float)


async def check_rejected_calls() -> None:
    await decorated_retry("1", city="Kazan")  # type: ignore[arg-type]
    await decorated_breaker(3, 4)  # type: ignore[call-arg]
    await retry_database_operation(load_quest, 1)  # type: ignore[call-arg]
    breaker = get_circuit_breaker("database")
    await breaker.call(load_quest, 1, town="Kazan")  # type: ignore[call-arg]
    CircuitBreakerConfig(failure_threshold="3")  # type: ignore[arg-type]


async def _ping() -> None:
    return None
