"""QuestCity's resilience policies: retry with backoff and jitter, circuit breakers, health checks.

The core uses nothing but the standard library; logging goes through :mod:`logging` with
structured ``extra`` fields, and metrics adapters attach as hooks and listeners.

Within ``with request_deadline(seconds):`` (set where a request enters) every policy runs within
what is left of the request's budget; ``remaining()`` tells how much that is (None outside one).
"""

from shared.resilience.backoff import Jitter
from shared.resilience.budget import RetryBudget, RetryBudgetConfig
from shared.resilience.circuit_breaker import (
    BreakerMetrics,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    StateChange,
)
from shared.resilience.clock import SYSTEM_CLOCK, Clock, SystemClock
from shared.resilience.compose import call_path, compose
from shared.resilience.decorators import circuit_breaker, retry_with_backoff
from shared.resilience.defaults import as_process_defaults
from shared.resilience.dependency import Dependency, DependencyObserver, GuardedDependency
from shared.resilience.errors import (
    CallTimeoutError,
    CircuitBreakerOpenError,
    RequestDeadlineError,
    ResilienceError,
    RetryDeadlineError,
)
from shared.resilience.health_check import HealthChecker, UnknownServiceError, get_health_checker
from shared.resilience.health_report import (
    HEALTH_JSON_MEDIA_TYPE,
    CheckResult,
    HealthReport,
    HealthStatus,
    ServiceHealth,
)
from shared.resilience.presets import (
    DATABASE_CIRCUIT_BREAKER_CONFIG,
    DATABASE_RETRY_CONFIG,
    S3_CIRCUIT_BREAKER_CONFIG,
    S3_RETRY_CONFIG,
    retry_database_operation,
    retry_s3_operation,
)
from shared.resilience.registry import PolicyRegistry, default_registry, get_circuit_breaker
from shared.resilience.request_deadline import (
    no_request_deadline,
    remaining,
    request_deadline,
)
from shared.resilience.retry import DEFAULT_RETRY_ON, RetryConfig, RetryDetails, RetryPolicy
from shared.resilience.sanitize import sanitize_error
from shared.resilience.timebox import wait_within, within

__all__ = [
    "DATABASE_CIRCUIT_BREAKER_CONFIG",
    "DATABASE_RETRY_CONFIG",
    "DEFAULT_RETRY_ON",
    "HEALTH_JSON_MEDIA_TYPE",
    "S3_CIRCUIT_BREAKER_CONFIG",
    "S3_RETRY_CONFIG",
    "SYSTEM_CLOCK",
    "BreakerMetrics",
    "CallTimeoutError",
    "CheckResult",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerOpenError",
    "CircuitState",
    "Clock",
    "Dependency",
    "DependencyObserver",
    "GuardedDependency",
    "HealthChecker",
    "HealthReport",
    "HealthStatus",
    "Jitter",
    "PolicyRegistry",
    "RequestDeadlineError",
    "ResilienceError",
    "RetryBudget",
    "RetryBudgetConfig",
    "RetryConfig",
    "RetryDeadlineError",
    "RetryDetails",
    "RetryPolicy",
    "ServiceHealth",
    "StateChange",
    "SystemClock",
    "UnknownServiceError",
    "as_process_defaults",
    "call_path",
    "circuit_breaker",
    "compose",
    "default_registry",
    "get_circuit_breaker",
    "get_health_checker",
    "no_request_deadline",
    "remaining",
    "request_deadline",
    "retry_database_operation",
    "retry_s3_operation",
    "retry_with_backoff",
    "sanitize_error",
    "wait_within",
    "within",
]
