"""The health report: per-service health and the aggregate, and how they are rendered.

Renderings:

- :meth:`HealthReport.summary` — the seed's JSON for ``GET /api/v1/health/``
  (``status``, ``timestamp``, ``services{total,healthy,degraded,unhealthy}``, ``message``);
- :meth:`HealthReport.detailed` — the same with every service's figures, for operators;
- :meth:`HealthReport.health_json` — the IETF ``application/health+json`` format
  (draft-inadarei-api-health-check).

Aggregation rule: any critical service unhealthy → ``unhealthy``; otherwise anything not healthy
→ ``degraded``; otherwise ``healthy``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.resilience.circuit_breaker import BreakerMetrics

HEALTH_JSON_MEDIA_TYPE = "application/health+json"


class HealthStatus(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"
    """No check has finished yet."""


_IETF_STATUS = {
    HealthStatus.HEALTHY: "pass",
    HealthStatus.DEGRADED: "warn",
    HealthStatus.UNKNOWN: "warn",
    HealthStatus.UNHEALTHY: "fail",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    at: float
    """Wall-clock time the check finished (seconds since the epoch)."""
    duration: float
    """Seconds the check took."""
    error: str | None = None
    """Sanitised: an error class and a generic description, never hosts or credentials."""


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    name: str
    status: HealthStatus
    critical: bool
    reason: str | None
    """Why the service is not healthy, in a few words; None when healthy."""
    last_check_at: float | None
    last_success_at: float | None
    response_time: float | None
    """Seconds the latest check took."""
    consecutive_failures: int
    availability: float | None
    """Percentage of successful checks in the kept history; None before the first check."""
    average_response_time: float | None
    checks: int
    """How many results the history holds."""
    last_error: str | None
    """The latest failed check's error while the service is not healthy; None once it is."""
    breaker: BreakerMetrics | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    """Extra figures from the service's own provider (the database pool, for example)."""
    last_error_at: float | None = None
    """When :attr:`last_error` happened (seconds since the epoch), so screens can show its age."""
    failures: int = 0
    """Failed checks since the process started."""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status.value,
            "critical": self.critical,
            "reason": self.reason,
            "last_check": self.last_check_at,
            "last_success": self.last_success_at,
            "response_time_ms": _ms(self.response_time),
            "consecutive_failures": self.consecutive_failures,
            "availability_percent": None
            if self.availability is None
            else round(self.availability, 2),
            "average_response_time_ms": _ms(self.average_response_time),
            "checks": self.checks,
            "failed_checks": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "circuit_breaker": None if self.breaker is None else self.breaker.as_dict(),
            **({"details": dict(self.details)} if self.details else {}),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: HealthStatus
    timestamp: float
    services: tuple[ServiceHealth, ...]

    @classmethod
    def aggregate(cls, services: tuple[ServiceHealth, ...], timestamp: float) -> HealthReport:
        if any(s.critical and s.status is HealthStatus.UNHEALTHY for s in services):
            status = HealthStatus.UNHEALTHY
        elif any(s.status is not HealthStatus.HEALTHY for s in services):
            status = HealthStatus.DEGRADED
        else:
            status = HealthStatus.HEALTHY
        return cls(status, timestamp, services)

    @property
    def http_status(self) -> int:
        """200 while the service can serve (healthy or degraded), 503 when it cannot."""
        return 503 if self.status is HealthStatus.UNHEALTHY else 200

    def counts(self) -> dict[str, int]:
        counts = {"total": len(self.services), "healthy": 0, "degraded": 0, "unhealthy": 0}
        for service in self.services:
            if service.status is not HealthStatus.UNKNOWN:
                counts[service.status.value] += 1
        return counts

    @property
    def message(self) -> str:
        def names(*statuses: HealthStatus, critical: bool | None = None) -> str:
            return ", ".join(
                s.name
                for s in self.services
                if s.status in statuses and (critical is None or s.critical == critical)
            )

        if self.status is HealthStatus.HEALTHY:
            return "All systems operational"
        if self.status is HealthStatus.UNHEALTHY:
            return f"Critical services unavailable: {names(HealthStatus.UNHEALTHY, critical=True)}"
        if all(s.status is HealthStatus.UNKNOWN for s in self.services):
            return "Health checks have not completed yet"
        affected = names(HealthStatus.DEGRADED, HealthStatus.UNHEALTHY, HealthStatus.UNKNOWN)
        return f"Running with reduced functionality: {affected}"

    def summary(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "timestamp": self.timestamp,
            "services": self.counts(),
            "message": self.message,
        }

    def detailed(self) -> dict[str, object]:
        return {
            **self.summary(),
            "checks": {service.name: service.as_dict() for service in self.services},
        }

    def health_json(
        self, *, service_id: str = "questcity", version: str | None = None
    ) -> dict[str, object]:
        checks: dict[str, list[dict[str, object]]] = {}
        for service in self.services:
            entry: dict[str, object] = {
                "componentId": service.name,
                "status": _IETF_STATUS[service.status],
                "observedUnit": "ms",
                "observedValue": _ms(service.response_time),
            }
            if service.last_check_at is not None:
                entry["time"] = _rfc3339(service.last_check_at)
            checks[f"{service.name}:responseTime"] = [entry]
        document: dict[str, object] = {
            "status": _IETF_STATUS[self.status],
            "serviceId": service_id,
            "description": self.message,
            "checks": checks,
        }
        if version is not None:
            document["version"] = version
        return document


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
