"""Request helpers shared by the route modules: JSON bodies, tokens, dependency failures."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse

from backend.api import strict_json
from backend.api.errors import ApiError
from backend.auth import Claims, Role, bearer_claims, require_role
from backend.degradation import DEGRADED_HEADER
from backend.domain import InvalidInput
from backend.state import app_state

JSON_BODY_LIMIT = 64 * 1024
"""Bytes a JSON request body may have; enforced while it streams in (``body_limits``)."""
IDEMPOTENCY_KEY_MAX = 255


async def json_object(request: Request) -> dict[str, object]:
    """The body as a JSON object; 400 when it is not JSON or not within the parser's bounds
    (``strict_json``), 422 when it is not an object. Its size was bounded on the way in."""
    raw = await request.body()
    try:
        data = strict_json.loads(raw)
    except strict_json.JsonRejected as error:
        raise ApiError(400, error.code, error.message) from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "The request body must be a JSON object.")
    return data


def invalid(error: InvalidInput) -> ApiError:
    return ApiError(
        422, "invalid_request", "Some fields are not valid.", extra={"fields": error.errors}
    )


def claims_of(request: Request) -> Claims:
    return bearer_claims(request, app_state(request).token_service())


def player_claims(request: Request) -> Claims:
    """A player's claims: staff tokens have no account behind them to own quests or avatars."""
    return require_role(claims_of(request), Role.PLAYER)


def staff_claims(request: Request, *roles: Role) -> Claims:
    return require_role(claims_of(request), *roles)


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
        )
    return key


def request_fingerprint(request: Request, body: Mapping[str, object] | None) -> str:
    """What makes two requests 'the same' for an idempotency key: method, path and body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode())
    return digest.hexdigest()


def degraded_json(payload: object, service: str, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers={DEGRADED_HEADER: service})
