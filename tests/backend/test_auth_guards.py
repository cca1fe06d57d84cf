"""Guards in a tiny Starlette app: 401 challenges, 403 for the wrong role, admin covers operator.

Driven through httpx's ASGITransport: Starlette's httpx.AsyncClient warns on plain httpx these days.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from backend.api.errors import ApiError, api_error_handler
from backend.auth.guards import authorize, bearer_claims, require_role
from backend.auth.tokens import Claims, Role, TokenService
from shared.resilience.testing import FakeClock
from tests.backend.auth_support import shared_key_pair, stranger_key_pair

NOW = 1_700_000_000.0


def tokens() -> TokenService:
    return TokenService(shared_key_pair(), clock=FakeClock(wall_start=NOW))


def make_app(service: TokenService) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        claims = bearer_claims(request, service)
        return JSONResponse({"sub": claims.sub, "role": claims.role.value})

    async def operator_only(request: Request) -> JSONResponse:
        claims = require_role(bearer_claims(request, service), Role.OPERATOR)
        return JSONResponse({"sub": claims.sub})

    async def admin_only(request: Request) -> JSONResponse:
        claims = authorize(request, service, Role.ADMIN)
        return JSONResponse({"sub": claims.sub})

    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/operator", operator_only),
            Route("/admin", admin_only, methods=["POST"]),
        ],
        exception_handlers={ApiError: api_error_handler},
    )


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(make_app(tokens())) as client:
        yield client


def bearer(
    role: Role, *, service: TokenService | None = None, sub: str = "someone"
) -> dict[str, str]:
    token = (service or tokens()).mint(sub, role, ttl=600)
    return {"Authorization": f"Bearer {token}"}


async def test_no_header_is_401_with_a_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/operator")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="questcity"'
    assert response.json()["error"] == "unauthorized"
    assert "Bearer" in response.json()["message"]


async def test_other_scheme_is_treated_as_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/operator", headers={"Authorization": "Basic dXNlcjpwYXNz"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="questcity"'


@pytest.mark.parametrize("value", ["Bearer garbage", "Bearer ", "bearer a.b.c"])
async def test_garbage_token_is_401_invalid_token(client: httpx.AsyncClient, value: str) -> None:
    response = await client.get("/operator", headers={"Authorization": value})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="questcity", error="invalid_token", error_description="malformed token"'
    )
    assert response.json() == {"error": "unauthorized", "message": "malformed token"}


async def test_refusal_reason_is_public_and_the_token_is_not_echoed(
    client: httpx.AsyncClient,
) -> None:
    foreign = TokenService(stranger_key_pair(), clock=FakeClock(wall_start=NOW))
    headers = bearer(Role.ADMIN, service=foreign)

    response = await client.post("/admin", headers=headers)

    assert response.status_code == 401
    assert response.json()["message"] == "invalid signature"
    token = headers["Authorization"].removeprefix("Bearer ")
    assert token not in response.text
    assert token not in response.headers["WWW-Authenticate"]


async def test_expired_token_is_401_token_expired() -> None:
    expired = TokenService(shared_key_pair(), clock=FakeClock(wall_start=NOW - 3600))
    async with client_for(make_app(tokens())) as client:
        response = await client.get("/whoami", headers=bearer(Role.PLAYER, service=expired))

    assert response.status_code == 401
    assert 'error_description="token expired"' in response.headers["WWW-Authenticate"]


async def test_operator_on_an_admin_route_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin", headers=bearer(Role.OPERATOR))

    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "message": "This action needs the admin role."}
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_player_on_an_operator_route_is_403(client: httpx.AsyncClient) -> None:
    assert (await client.get("/operator", headers=bearer(Role.PLAYER))).status_code == 403


async def test_admin_on_an_operator_route_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/operator", headers=bearer(Role.ADMIN, sub="alice"))

    assert response.status_code == 200
    assert response.json() == {"sub": "alice"}


async def test_operator_on_an_operator_route_and_admin_on_an_admin_route(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/operator", headers=bearer(Role.OPERATOR))).status_code == 200
    assert (await client.post("/admin", headers=bearer(Role.ADMIN))).status_code == 200


async def test_any_valid_token_passes_bearer_claims_alone(client: httpx.AsyncClient) -> None:
    response = await client.get("/whoami", headers=bearer(Role.PLAYER, sub="user-7"))

    assert response.json() == {"sub": "user-7", "role": "player"}


def test_require_role_needs_at_least_one_role() -> None:
    claims = Claims(sub="a", role=Role.ADMIN, exp=0, iat=0, iss="questcity")

    with pytest.raises(ValueError, match="at least one role"):
        require_role(claims)


def test_require_role_accepts_any_of_several_roles() -> None:
    claims = Claims(sub="a", role=Role.PLAYER, exp=0, iat=0, iss="questcity")

    assert require_role(claims, Role.OPERATOR, Role.PLAYER) is claims
