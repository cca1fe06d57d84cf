"""The seed document's configurations, and the call forms that use them.

Database and S3 values are the seed's (``RESILIENCE.en.md``, "Configuration"). The seed gives no
S3 breaker; ours tolerates more failures than the database's (S3 is not critical) and allows slower
calls (object uploads).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from shared.resilience import registry as _registry
from shared.resilience.budget import RetryBudgetConfig
from shared.resilience.circuit_breaker import CircuitBreakerConfig
from shared.resilience.registry import PolicyRegistry, default_registry
from shared.resilience.retry import RetryConfig, RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")

DATABASE_RETRY_CONFIG = RetryConfig(
    max_attempts=3,
    base_delay=0.5,
    max_delay=10.0,
    timeout=30.0,
    budget=RetryBudgetConfig(),
    name="database",
)
S3_RETRY_CONFIG = RetryConfig(
    max_attempts=5,
    base_delay=1.0,
    max_delay=30.0,
    timeout=60.0,
    budget=RetryBudgetConfig(),
    name="s3",
)
DATABASE_CIRCUIT_BREAKER_CONFIG = CircuitBreakerConfig(
    failure_threshold=3,
    recovery_timeout=30.0,
    success_threshold=2,
    timeout=10.0,
)
S3_CIRCUIT_BREAKER_CONFIG = CircuitBreakerConfig(
    failure_threshold=5,
    recovery_timeout=30.0,
    success_threshold=2,
    timeout=20.0,
)


_policies: dict[str, tuple[PolicyRegistry, RetryPolicy]] = {}


def _preset_policy(name: str, config: RetryConfig) -> RetryPolicy:
    # Made from the default registry of the moment: inside a running backend, the backend's
    # (its clock, and the budget of the name shared with its own calls).
    cached = _policies.get(name)
    if cached is None or cached[0] is not _registry.active:
        registry = default_registry()
        cached = _policies[name] = (registry, registry.retry_policy(name, config))
    return cached[1]


async def retry_database_operation(
    fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``await fn(*args, **kwargs)`` under :data:`DATABASE_RETRY_CONFIG` (the "database" budget)."""
    return await _preset_policy("database", DATABASE_RETRY_CONFIG).call(fn, *args, **kwargs)


async def retry_s3_operation(
    fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``await fn(*args, **kwargs)`` under :data:`S3_RETRY_CONFIG` (the "s3" budget)."""
    return await _preset_policy("s3", S3_RETRY_CONFIG).call(fn, *args, **kwargs)
