"""The request budget where requests enter: the middleware sets the deadline, a spent budget answers
503 naming the service, and ``QUESTCITY_REQUEST_TIMEOUT`` is read and checked at start-up."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.api.errors import budget_spent_handler
from backend.request_budget import RequestBudgetMiddleware
from backend.settings import Settings, SettingsError
from shared.resilience import CircuitState, RequestDeadlineError, remaining
from shared.resilience.testing import FakeClock
from tests.backend.integration.conftest import PNG, backend_settings, running
from tests.support import FaultProxy, PostgresServer, S3Server


def tiny_app(clock: FakeClock, seen_at_startup: list[float | None]) -> Starlette:
    async def budget(request: Request) -> Response:
        return JSONResponse({"remaining": remaining(clock)})

    async def spent(request: Request) -> Response:
        raise RequestDeadlineError("s3", 2.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        seen_at_startup.append(remaining(clock))
        yield

    return Starlette(
        routes=[Route("/budget", budget), Route("/spent", spent)],
        middleware=[Middleware(RequestBudgetMiddleware, seconds=2.0, clock=clock)],
        exception_handlers={RequestDeadlineError: budget_spent_handler},
        lifespan=lifespan,
    )


@contextlib.asynccontextmanager
async def client_of(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://questcity.test"
        ) as client,
    ):
        yield client


async def test_every_request_runs_within_its_budget_and_start_up_within_none() -> None:
    clock = FakeClock()
    seen_at_startup: list[float | None] = []
    async with client_of(tiny_app(clock, seen_at_startup)) as client:
        first = await client.get("/budget")
        await clock.advance(60.0)
        second = await client.get("/budget")
    # 2 s less the time kept back to answer (ANSWER_RESERVE, 0.1 s).
    assert first.json()["remaining"] == pytest.approx(1.9)
    assert second.json()["remaining"] == pytest.approx(1.9), "each request has a budget of its own"
    assert seen_at_startup == [None], "start-up is background work: no request deadline"
    assert remaining(clock) is None


async def test_a_spent_budget_answers_503_naming_the_service() -> None:
    async with client_of(tiny_app(FakeClock(), [])) as client:
        response = await client.get("/spent")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert (body["error"], body["service"]) == ("service_unavailable", "s3")
    assert "deadline" not in body["message"], "no internal wording in what clients see"


def test_the_setting_defaults_to_ten_seconds() -> None:
    assert Settings.from_mapping({}).request_timeout == 10.0
    assert Settings.from_mapping({"QUESTCITY_REQUEST_TIMEOUT": "2.5"}).request_timeout == 2.5


@pytest.mark.parametrize("raw", ["0", "-3", "ten", "inf", "nan"])
def test_a_bad_budget_stops_start_up_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_mapping({"QUESTCITY_REQUEST_TIMEOUT": raw})
    assert str(raised.value) == (
        f"QUESTCITY_REQUEST_TIMEOUT={raw!r}: must be a number of seconds greater than 0, "
        "for example 10"
    )


async def test_an_upload_slower_than_the_budget_still_gets_the_whole_budget_for_s3(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    settings, dsn = backend_settings(postgres_server, pg_proxy, s3_server, s3_proxy, tmp_path)
    async with running(settings, dsn) as backend:

        async def slow_phone() -> AsyncIterator[bytes]:
            first = PNG + b"\x00" * (1000 - len(PNG))
            yield first
            # The client takes longer than the whole budget to send the rest: on main the
            # upload then reached S3 with nothing left and answered 503 blaming S3.
            backend.clock.jump(settings.request_timeout + 5.0)
            yield b"\x00" * 1000

        s3 = backend.state.registry.find_circuit_breaker("s3")
        assert s3 is not None
        failed_before = s3.metrics.failed_calls + s3.metrics.timed_out_calls
        response = await backend.client.put(
            "/api/v1/users/me/avatar", content=slow_phone(), headers=backend.auth()
        )
        assert response.status_code == 200, response.text
        assert s3.metrics.failed_calls + s3.metrics.timed_out_calls == failed_before
        assert backend.breaker("s3") is CircuitState.CLOSED
