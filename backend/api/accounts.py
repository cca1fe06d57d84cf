"""Accounts: register and log in (DESIGN §7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.api.common import invalid, json_object
from backend.api.errors import ApiError
from backend.auth import Role, hash_password_async, verify_password_async
from backend.db import repositories as repo
from backend.db.errors import Conflict
from backend.degradation import DEPENDENCY_FAILURES, unavailable
from backend.domain import InvalidInput, parse_credentials
from backend.state import app_state


async def register(request: Request) -> Response:
    state = app_state(request)
    try:
        username, password = parse_credentials(await json_object(request))
    except InvalidInput as error:
        raise invalid(error) from None
    password_hash = await hash_password_async(password)
    try:
        user = await state.database.write(repo.create_user, username, password_hash)
    except Conflict:
        raise ApiError(409, "username_taken", "That username is taken; choose another.") from None
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    return JSONResponse({"id": user.id, "username": user.username}, status_code=201)


async def token(request: Request) -> Response:
    state = app_state(request)
    try:
        username, password = parse_credentials(await json_object(request))
    except InvalidInput as error:
        raise invalid(error) from None
    try:
        user = await state.database.read(repo.find_user_by_name, username)
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    # With no such user the KDF still runs in full, so timing does not reveal usernames.
    if not await verify_password_async(password, user.password_hash if user else None):
        raise _bad_credentials()
    assert user is not None
    ttl = state.settings.access_token_ttl
    access = state.token_service().mint(user.id, Role.PLAYER, ttl)
    return JSONResponse({"access_token": access, "token_type": "bearer", "expires_in": ttl})


def _bad_credentials() -> ApiError:
    return ApiError(
        401,
        "invalid_credentials",
        "The username or password is wrong.",
        headers={"WWW-Authenticate": 'Bearer realm="questcity"'},
    )


routes = [
    Route("/api/v1/auth/register", register, methods=["POST"]),
    Route("/api/v1/auth/token", token, methods=["POST"]),
]
