"""One check of one target: read its health API over HTTP and turn the answer into a record.

A failed probe (refused, timed out, garbage, a 5xx without the health JSON) is data: it becomes a
record with status ``unreachable`` and a sanitised error class, never an exception, so the daemon
never crashes on it. With an operator token the probe reads ``/api/v1/health/detailed`` (per-service
figures); without one, or when the token is refused, the public ``/api/v1/health/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from monitor.config import Target
from monitor.store.models import CheckRecord, ServiceSample, Status
from shared.resilience import SYSTEM_CLOCK, Clock

SUMMARY_PATH = "/api/v1/health/"
DETAILED_PATH = "/api/v1/health/detailed"


async def probe(
    client: httpx.AsyncClient, target: Target, *, token: str | None, clock: Clock = SYSTEM_CLOCK
) -> CheckRecord:
    at = clock.wall()
    started = clock.monotonic()
    try:
        response = await _fetch(client, target, token)
    except httpx.TimeoutException:
        return _failed(target, at, clock.monotonic() - started, None, "timeout")
    except httpx.ConnectError as error:
        refused = "refused" in str(error).lower()
        return _failed(
            target,
            at,
            clock.monotonic() - started,
            None,
            "connection refused" if refused else "connection failed",
        )
    except httpx.HTTPError as error:
        return _failed(target, at, clock.monotonic() - started, None, _http_error_class(error))
    latency_ms = (clock.monotonic() - started) * 1000.0
    try:
        document = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _failed(target, at, latency_ms / 1000, response.status_code, "invalid JSON")
    if not isinstance(document, dict) or "status" not in document:
        return _failed(target, at, latency_ms / 1000, response.status_code, "unexpected JSON")
    status = Status.parse(document.get("status"))
    if status is Status.UNKNOWN and response.status_code >= 500:
        return _failed(
            target, at, latency_ms / 1000, response.status_code, f"HTTP {response.status_code}"
        )
    return CheckRecord(
        target=target.name,
        at=at,
        status=status,
        latency_ms=latency_ms,
        http_status=response.status_code,
        error=None,
        services=_services(document),
    )


async def _fetch(client: httpx.AsyncClient, target: Target, token: str | None) -> httpx.Response:
    timeout = httpx.Timeout(target.timeout)
    if token:
        response = await client.get(
            target.url + DETAILED_PATH,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code not in (401, 403, 404):
            return response
    return await client.get(target.url + SUMMARY_PATH, timeout=timeout)


def _failed(
    target: Target, at: float, elapsed: float, http_status: int | None, error: str
) -> CheckRecord:
    return CheckRecord(
        target=target.name,
        at=at,
        status=Status.UNREACHABLE,
        latency_ms=elapsed * 1000.0,
        http_status=http_status,
        error=error,
    )


def _http_error_class(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.RemoteProtocolError):
        return "protocol error"
    if isinstance(error, httpx.NetworkError):
        return "network error"
    return "request failed"


def _services(document: Mapping[str, object]) -> tuple[ServiceSample, ...]:
    checks = document.get("checks")
    if not isinstance(checks, dict):
        return ()
    samples = []
    for name, raw in sorted(checks.items()):
        if not isinstance(raw, dict) or raw.get("status") == "not_configured":
            continue
        breaker = raw.get("circuit_breaker")
        details: dict[str, object] = {}
        if isinstance(breaker, dict):
            details["circuit_breaker"] = breaker
        for key in (
            "details",
            "availability_percent",
            "average_response_time_ms",
            "critical",
            "reason",
            "last_error",
        ):
            if raw.get(key) is not None:
                details[key] = raw[key]
        response_ms = raw.get("response_time_ms")
        failures = raw.get("consecutive_failures")
        samples.append(
            ServiceSample(
                service=str(name),
                status=Status.parse(raw.get("status")),
                response_ms=float(response_ms) if isinstance(response_ms, int | float) else None,
                consecutive_failures=failures if isinstance(failures, int) else None,
                breaker_state=str(breaker["state"])
                if isinstance(breaker, dict) and "state" in breaker
                else None,
                details=details,
            )
        )
    return tuple(samples)
