"""Accounts: register and log in (ARCHITECTURE §7).

Both routes are throttled per client before any password is hashed, so a refused attempt costs
a dictionary look-up, and hashing runs in bounded slots (:mod:`backend.auth.defences`). Logins are
also throttled per account in a way that lets the owner in during a flood
(:mod:`backend.auth.throttle`), with device cookies (:mod:`backend.auth.device_cookie`).

The client is ``request.client``, as uvicorn's proxy-headers middleware leaves it: the peer
address, or, for a connection from an address in ``FORWARDED_ALLOW_IPS`` (uvicorn's default:
``127.0.0.1,::1``), the right-most address in ``X-Forwarded-For`` that is not itself trusted.
So a reverse proxy on the same host works as it is (it must append the client's address to
``X-Forwarded-For``, as nginx's ``$proxy_add_x_forwarded_for`` and Caddy do); a proxy on another
host must be listed in ``FORWARDED_ALLOW_IPS``, or every client looks like the proxy and shares
one budget (owners still get in, through their device cookies). A client that is not trusted
cannot choose its address with the header; a local process can, which the loopback trust
accepts.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.api.common import invalid, json_object
from backend.api.errors import ApiError
from backend.api.models.accounts import AccessToken, Credentials, NewAccount, User
from backend.api.models.errors import Error
from backend.api.operations import Operation, Reply, errors, operation
from backend.api.validation import validated
from backend.auth import Role, username_keys
from backend.auth.device_cookie import (
    COOKIE_NAME,
    COOKIE_PATH,
    MAX_AGE,
    SECRET_PURPOSE,
    DeviceCookies,
)
from backend.auth.passwords import HashingBusy
from backend.auth.throttle import Verdict
from backend.auth.usernames import display_form, username_key
from backend.db import repositories as repo
from backend.db.errors import Conflict
from backend.degradation import DEPENDENCY_FAILURES, unavailable
from backend.domain import InvalidInput
from backend.state import AppState, app_state

_LIMIT_MESSAGES = {
    "pair": "Too many failed logins to this account from here.",
    "client": "Too many failed logins from your network.",
    "account": "Too many failed logins to this account from devices it has not been used on. "
    "A device that has logged in to it before can still log in now.",
    "busy": "Too many failed logins from too many places at once; new ones must wait. "
    "A device that has logged in to the account before can still log in now.",
}


@operation(
    Operation(
        "register",
        "Create an account",
        "accounts",
        {
            201: Reply("The account was created.", User, links=("getUserAvatar",)),
            409: Reply("The username is taken (`username_taken`).", Error),
            429: "TooManyAttempts",
            **errors(400, 413, 422, 503),
        },
        body=NewAccount,
        body_description="The new account's credentials.",
    )
)
async def register(request: Request) -> Response:
    state = app_state(request)
    defences = state.defences
    body = await json_object(request)
    try:
        validated(Credentials, body)
    except InvalidInput as error:
        raise invalid(error) from None
    client = _client(request)
    verdict = defences.registrations.check(client)
    if not verdict.allowed:
        raise _throttled(verdict, "Too many accounts were registered from your network.")
    # A new account's rules are checked after the throttle, which counts attempts, not names.
    try:
        account = validated(NewAccount, body)
    except InvalidInput as error:
        raise invalid(error) from None
    username, password = account.username, account.password
    defences.registrations.count(client)
    try:
        password_hash = await defences.hashing.hash(password)
    except HashingBusy as busy:
        raise _busy(busy) from None
    # Accounts made by older pods during a rolling upgrade get their keys first, so that a
    # look-alike of their names is refused as taken.
    await username_keys.fill_missing(state.database, limit=100)
    try:
        user = await state.database.write(
            repo.create_user, display_form(username), username_key(username), password_hash
        )
    except Conflict:
        raise ApiError(409, "username_taken", "That username is taken; choose another.") from None
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    return JSONResponse({"id": user.id, "username": user.username}, status_code=201)


@operation(
    Operation(
        "createToken",
        "Log in: get an access token",
        "accounts",
        {
            200: Reply("A player's access token.", AccessToken),
            401: "Unauthorized",
            429: "TooManyAttempts",
            **errors(400, 413, 422, 503),
        },
        description="401 (`invalid_credentials`) for an unknown user or a wrong password alike. "
        "Failed logins are throttled per account and client (429); a successful login sets a "
        "`questcity_device` cookie, with which this device still gets in while others are "
        "throttled for the account.",
        body=Credentials,
        body_description="The account's credentials.",
    )
)
async def token(request: Request) -> Response:
    state = app_state(request)
    defences = state.defences
    try:
        credentials = validated(Credentials, await json_object(request))
    except InvalidInput as error:
        raise invalid(error) from None
    username, password = credentials.username, credentials.password
    key = username_key(username)
    cookies = _device_cookies(state)
    device = cookies.device_for(request.cookies.get(COOKIE_NAME), key, state.clock.wall())
    attempt = defences.logins.attempt(key, _client(request), device)
    verdict = defences.logins.begin(attempt)  # counted as a failure until it succeeds
    if not verdict.allowed:
        raise _throttled(verdict, _LIMIT_MESSAGES[verdict.limit or "pair"])
    try:
        user = await state.database.read(repo.find_user_for_login, username, key)
    except DEPENDENCY_FAILURES as error:
        defences.logins.abandon(attempt)
        raise unavailable("database", error) from None
    # With no such user the KDF still runs in full, so timing does not reveal usernames.
    stored = user.password_hash if user else None
    try:
        right = await defences.hashing.verify(password, stored, urgent=attempt.trusted)
    except HashingBusy as busy:
        defences.logins.abandon(attempt)  # not judged: not a failure
        raise _busy(busy) from None
    if not right:
        raise _bad_credentials()
    assert user is not None
    defences.logins.succeeded(attempt)
    ttl = state.settings.access_token_ttl
    access = state.token_service().mint(user.id, Role.PLAYER, ttl)
    response = JSONResponse({"access_token": access, "token_type": "bearer", "expires_in": ttl})
    if device is None:
        response.set_cookie(
            COOKIE_NAME,
            cookies.issue(key, state.clock.wall()),
            max_age=MAX_AGE,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _device_cookies(state: AppState) -> DeviceCookies:
    cookies = state.defences.cookies
    if cookies is None:
        cookies = DeviceCookies(state.token_service().derive_secret(SECRET_PURPOSE))
        state.defences.cookies = cookies
    return cookies


def _throttled(verdict: Verdict, reason: str) -> ApiError:
    return _retry_later(429, "too_many_attempts", f"{reason} Try again in", verdict.retry_after)


def _busy(busy: HashingBusy) -> ApiError:
    return _retry_later(
        503, "overloaded", "Too many logins at once; try again in", busy.retry_after
    )


def _retry_later(status: int, code: str, lead: str, seconds: int) -> ApiError:
    """An answer that says when to come back, in its text, its body and ``Retry-After``."""
    unit = "second" if seconds == 1 else "seconds"
    return ApiError(
        status,
        code,
        f"{lead} {seconds} {unit}.",
        headers={"Retry-After": str(seconds)},
        extra={"retry_after": seconds},
    )


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
