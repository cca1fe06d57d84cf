"""The health API's answers (docs/ARCHITECTURE.md §6), from the values :mod:`shared.resilience`
reports.

``shared.resilience`` stays free of pydantic; these models describe what its reports'
``summary()``, ``detailed()``, ``health_json()`` and ``as_dict()`` hold.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field

from backend.api.models.base import Answer, absent
from shared.resilience import CircuitState, HealthStatus


class ServiceCounts(Answer):
    """How many services are in each state (those not yet checked count only in `total`)."""

    total: int = Field(ge=0)
    healthy: int = Field(ge=0)
    degraded: int = Field(ge=0)
    unhealthy: int = Field(ge=0)


class HealthSummary(Answer):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: float = Field(description="Seconds since the epoch.")
    services: ServiceCounts
    message: str


class CircuitBreaker(Answer):
    name: str
    state: CircuitState
    forced_open: bool
    total_calls: int = Field(ge=0)
    successful_calls: int = Field(ge=0)
    failed_calls: int = Field(ge=0)
    timed_out_calls: int = Field(ge=0)
    rejected_calls: int = Field(ge=0)
    ignored_calls: int = Field(ge=0)
    cancelled_calls: int = Field(ge=0)
    slow_calls: int = Field(ge=0)
    failure_rate: float = Field(ge=0, le=1)
    consecutive_failures: int = Field(ge=0)
    state_transitions: int = Field(ge=0)
    last_transition_at: float | None = Field(description="Seconds since the epoch.")
    retry_after: float | None = Field(ge=0, description="Seconds until the next trial.")
    half_open_in_flight: int = Field(ge=0)


class ServiceHealth(Answer):
    name: str
    status: HealthStatus
    critical: bool
    reason: str | None
    last_check: float | None = Field(description="Seconds since the epoch.")
    last_success: float | None = Field(description="Seconds since the epoch.")
    response_time_ms: float | None = Field(ge=0, description="Milliseconds.")
    consecutive_failures: int = Field(ge=0)
    availability_percent: float | None = Field(ge=0, le=100)
    average_response_time_ms: float | None = Field(ge=0, description="Milliseconds.")
    checks: int = Field(ge=0)
    failed_checks: int = Field(ge=0, description="Failed checks since the process started.")
    last_error: str | None = Field(
        description="The latest failed check's error while the service is not healthy; "
        "null once it is healthy again."
    )
    last_error_at: float | None = Field(description="Seconds since the epoch.")
    circuit_breaker: CircuitBreaker | None
    details: dict[str, object] = absent(
        description="The service's own figures (the database's connection pool)."
    )


class UnconfiguredService(Answer):
    """A dependency this server runs without (file storage without an S3 endpoint)."""

    name: str
    status: Literal["not_configured"]
    critical: bool
    reason: str


class Instance(Answer):
    """Which backend process answered (each replica has its own breakers and counters)."""

    id: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="`QUESTCITY_INSTANCE_ID`: by default the host name and the process id.",
    )
    started_at: float = Field(
        description="When the process started, in seconds since the epoch (as `timestamp`): "
        "a new value means a restart, its counters from zero."
    )


class HealthDetailed(Answer):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: float = Field(description="Seconds since the epoch.")
    services: ServiceCounts
    message: str
    checks: dict[str, ServiceHealth | UnconfiguredService]
    ready: bool = Field(description="What `/api/v1/health/ready` answers.")
    instance: Instance


class HealthCheckEntry(Answer):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    component_id: str = Field(alias="componentId")
    status: Literal["pass", "warn", "fail"]
    observed_unit: Literal["ms"] = Field(alias="observedUnit")
    observed_value: float | None = Field(alias="observedValue", ge=0)
    time: AwareDatetime = absent()


class HealthJson(Answer):
    """The IETF health check format (draft-inadarei-api-health-check). `checks` (each service's
    latency) only for whom `/detailed` would answer: without such a token (in `authenticated`
    mode) it is left out."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    status: Literal["pass", "warn", "fail"]
    version: str
    service_id: str = Field(alias="serviceId")
    description: str
    checks: dict[str, list[HealthCheckEntry]] = absent()


class Liveness(Answer):
    status: Literal["alive"]


class Ready(Answer):
    status: Literal["ready"]


class NotReady(Answer):
    status: Literal["not_ready"]
    reason: str


class BreakerReset(Answer):
    service: str
    state: CircuitState
    previous_state: CircuitState
    instance: Instance = Field(description="The process whose breaker this was.")
