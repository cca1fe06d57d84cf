"""A stand-in for a QuestCity backend's health API, as an httpx transport whose behaviour a test
switches: healthy, degraded, dead, slow, garbage, 500."""

from __future__ import annotations

import json

import httpx


def detailed(
    *,
    status: str = "healthy",
    database: str = "healthy",
    s3: str = "healthy",
    database_breaker: str = "closed",
    s3_breaker: str = "closed",
    exhausted: int = 0,
    s3_calls: tuple[int, int, int] = (10, 0, 0),
) -> dict[str, object]:
    successes, failures, rejected = s3_calls
    return {
        "status": status,
        "timestamp": 1.0,
        "services": {"total": 2, "healthy": 2, "degraded": 0, "unhealthy": 0},
        "message": "",
        "checks": {
            "database": {
                "status": database,
                "response_time_ms": 3.5,
                "consecutive_failures": 0 if database == "healthy" else 3,
                "circuit_breaker": {
                    "state": database_breaker,
                    "failed_calls": 0,
                    "successful_calls": 10,
                    "rejected_calls": 0,
                },
                "details": {
                    "size": 20,
                    "checked_out": 1,
                    "overflow": 0,
                    "exhausted_total": exhausted,
                },
            },
            "s3": {
                "status": s3,
                "response_time_ms": 7.0,
                "consecutive_failures": 0,
                "circuit_breaker": {
                    "state": s3_breaker,
                    "failed_calls": failures,
                    "successful_calls": successes,
                    "rejected_calls": rejected,
                },
                "last_error": None if s3 == "healthy" else "ConnectionRefusedError: refused",
            },
        },
    }


class FakeBackend:
    def __init__(self) -> None:
        self.mode = "healthy"
        self.document: dict[str, object] = detailed()
        self.requests: list[httpx.Request] = []
        self.token = "operator-token"
        """The one bearer token ``/detailed`` takes (401 for any other)."""
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.mode == "dead":
            raise httpx.ConnectError("[Errno 111] Connection refused by 10.0.0.7:8000")
        if self.mode == "slow":
            raise httpx.ReadTimeout("timed out reading from 10.0.0.7")
        if self.mode == "garbage":
            return httpx.Response(200, text="<html>proxy error at 10.0.0.7</html>")
        if self.mode == "500":
            return httpx.Response(500, text="Internal Server Error")
        if request.url.path.endswith("/detailed"):
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return httpx.Response(401, json={"error": "unauthorized"})
            return httpx.Response(200, content=json.dumps(self.document))
        summary = {k: v for k, v in self.document.items() if k != "checks"}
        code = 503 if summary["status"] == "unhealthy" else 200
        return httpx.Response(code, json=summary)
