"""The probe says when ``/detailed`` refused its token (issue #14: the monitor went quiet, falling
back to the summary without a word): 401 and 403 are a refusal carried on the replica's check,
a 404 is an older backend, and the check itself still stands on the summary as before."""

from __future__ import annotations

import httpx
import pytest

from monitor.config import Target
from monitor.probe import probe_replica
from monitor.store import Status
from shared.resilience.testing import FakeClock
from tests.monitor.fake_backend import FakeBackend

TARGET = Target("questcity-api", "http://backend.test", interval=10.0, timeout=4.0)


async def _check(transport: httpx.AsyncBaseTransport, token: str | None) -> tuple[int | None, str]:
    async with httpx.AsyncClient(transport=transport) as client:
        check = await probe_replica(
            client, TARGET, TARGET.url, token=token, clock=FakeClock(), key="r1"
        )
    return check.token_refused, check.record.status.value


async def test_a_token_the_backend_rejects_is_said_and_the_summary_still_checks() -> None:
    backend = FakeBackend()  # takes only "operator-token"
    refused, status = await _check(backend.transport, "revoked-token")
    assert (refused, status) == (401, Status.HEALTHY.value)
    assert [r.url.path for r in backend.requests] == [
        "/api/v1/health/detailed",
        "/api/v1/health/",
    ]


@pytest.mark.parametrize(("code", "said"), [(403, 403), (404, None)])
async def test_a_403_is_a_refusal_and_a_404_an_older_backend(code: int, said: int | None) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/detailed"):
            return httpx.Response(code, json={"error": "no"})
        return httpx.Response(200, json={"status": "healthy"})

    assert await _check(httpx.MockTransport(handle), "a-token") == (said, "healthy")


async def test_a_token_taken_or_none_sent_is_no_refusal() -> None:
    backend = FakeBackend()
    assert await _check(backend.transport, "operator-token") == (None, "healthy")
    assert await _check(backend.transport, None) == (None, "healthy")


async def test_the_refusal_is_kept_when_the_fallback_then_fails() -> None:
    """Refused, then the summary times out: the check is a failure, and the token still refused."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/detailed"):
            return httpx.Response(401)
        raise httpx.ReadTimeout("timed out")

    assert await _check(httpx.MockTransport(handle), "expired") == (401, "unreachable")
