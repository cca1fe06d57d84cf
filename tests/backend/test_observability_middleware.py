"""Request timing: labels are route templates (never raw paths) and final status codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from itertools import count

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.observability import Metrics, RequestMetricsMiddleware, render

HISTOGRAM = "questcity_http_request_duration_seconds"


def fake_timer(step: float = 0.25) -> Callable[[], float]:
    """Each reading is ``step`` later than the one before: every request takes exactly ``step``."""
    ticks = count()
    return lambda: next(ticks) * step


async def get_quest(request: Request) -> Response:
    return JSONResponse({"id": request.path_params["id"]})


async def create_quest(request: Request) -> Response:
    return JSONResponse({"id": 1}, status_code=201)


async def boom(request: Request) -> Response:
    raise RuntimeError("database exploded")


async def user(request: Request) -> Response:
    return PlainTextResponse(str(request.path_params["uid"]))


async def static_files(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("file")(scope, receive, send)


ROUTES = [
    Route("/api/v1/quests", create_quest, methods=["POST"]),
    Route("/api/v1/quests/{id}", get_quest),
    Route("/boom", boom),
    Mount("/admin", routes=[Route("/users/{uid:int}", user)]),
    Mount("/static", app=static_files),
]


class CopyScope:
    """A middleware that routes a copy of the scope, so the router's notes never reach us."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(dict(scope), receive, send)


def make_app(metrics: Metrics, *inner: Middleware) -> Starlette:
    return Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(RequestMetricsMiddleware, metrics=metrics, timer=fake_timer()),
            *inner,
        ],
    )


def observed(registry: CollectorRegistry) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(method, route, status) → (count, sum) of the request histogram."""
    found: dict[tuple[str, str, str], list[float]] = {}
    body, _ = render(registry)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name in (f"{HISTOGRAM}_count", f"{HISTOGRAM}_sum"):
                labels = sample.labels
                key = (labels["method"], labels["route"], labels["status"])
                slot = 0 if sample.name.endswith("_count") else 1
                found.setdefault(key, [0.0, 0.0])[slot] = sample.value
    return {key: (c, s) for key, (c, s) in found.items()}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(metrics: Metrics) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app(metrics)) as client:
        yield client


async def test_a_request_is_labelled_with_its_route_template_and_timed(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for quest in (42, 43, 44):
        assert (await client.get(f"/api/v1/quests/{quest}")).status_code == 200
    assert (await client.post("/api/v1/quests", json={})).status_code == 201
    assert observed(registry) == {
        ("GET", "/api/v1/quests/{id}", "200"): (3, 0.75),
        ("POST", "/api/v1/quests", "201"): (1, 0.25),
    }


async def test_unknown_paths_are_unmatched_never_the_raw_path(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for path in ("/nope", "/api/v1/quests/42/nothing", "/wp-login.php", "/admin/secrets"):
        assert (await client.get(path)).status_code == 404
    assert observed(registry) == {("GET", "unmatched", "404"): (4, 1.0)}


async def test_an_endpoint_that_raises_is_a_500_on_its_route(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    assert (await client.get("/boom")).status_code == 500
    assert observed(registry) == {("GET", "/boom", "500"): (1, 0.25)}


async def test_a_wrong_method_is_labelled_with_the_route_it_almost_matched(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    assert (await client.delete("/api/v1/quests")).status_code == 405
    assert (await client.request("BREW", "/api/v1/quests/1")).status_code == 405
    assert observed(registry) == {
        ("DELETE", "/api/v1/quests", "405"): (1, 0.25),
        ("OTHER", "/api/v1/quests/{id}", "405"): (1, 0.25),
    }


async def test_mounted_routes_carry_the_mount_prefix(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    assert (await client.get("/admin/users/7")).text == "7"
    assert (await client.get("/static/css/site.css")).text == "file"
    assert observed(registry) == {
        ("GET", "/admin/users/{uid}", "200"): (1, 0.25),
        ("GET", "/static/{path}", "200"): (1, 0.25),
    }


async def test_as_the_outermost_wrapper_it_sees_the_500_the_app_sent(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    app = RequestMetricsMiddleware(Starlette(routes=ROUTES), metrics=metrics, timer=fake_timer())
    async with client_for(app) as client:
        assert (await client.get("/boom")).status_code == 500
        assert (await client.get("/api/v1/quests/9")).status_code == 200
    assert observed(registry) == {
        ("GET", "/boom", "500"): (1, 0.25),
        ("GET", "/api/v1/quests/{id}", "200"): (1, 0.25),
    }


async def test_a_copied_scope_is_matched_against_the_router_itself(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    async with client_for(make_app(metrics, Middleware(CopyScope))) as client:
        assert (await client.get("/api/v1/quests/42")).status_code == 200
        assert (await client.get("/admin/users/3")).status_code == 200
        assert (await client.get("/admin/nothing")).status_code == 404
        assert (await client.get("/nope")).status_code == 404
    assert observed(registry) == {
        ("GET", "/api/v1/quests/{id}", "200"): (1, 0.25),
        ("GET", "/admin/users/{uid}", "200"): (1, 0.25),
        ("GET", "unmatched", "404"): (2, 0.5),
    }


async def test_a_route_added_after_the_first_request_gets_its_template(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    app = Starlette(
        routes=list(ROUTES),
        middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics, timer=fake_timer())],
    )
    async with client_for(app) as client:
        await client.get("/api/v1/quests/1")
        app.router.routes.append(Route("/api/v1/users/{id}/avatar", get_quest))
        assert (await client.get("/api/v1/users/5/avatar")).status_code == 200
    assert ("GET", "/api/v1/users/{id}/avatar", "200") in observed(registry)


async def test_a_request_cancelled_before_its_response_is_a_499(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    async def hangs_up(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError

    middleware = RequestMetricsMiddleware(hangs_up, metrics=metrics, timer=fake_timer())
    scope: Scope = {"type": "http", "method": "GET", "path": "/slow", "headers": []}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    with pytest.raises(asyncio.CancelledError):
        await middleware(scope, receive, send)
    assert observed(registry) == {("GET", "unmatched", "499"): (1, 0.25)}


async def test_other_scopes_pass_through_untimed(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = RequestMetricsMiddleware(app, metrics=metrics)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await middleware({"type": "lifespan"}, receive, send)
    await middleware({"type": "websocket", "path": "/ws"}, receive, send)
    assert seen == ["lifespan", "websocket"]
    assert observed(registry) == {}
