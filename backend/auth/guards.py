"""Request guards for Starlette handlers: who is calling (401) and may they do this (403).

Challenges follow RFC 6750: a missing token gets a bare ``Bearer realm=...`` challenge, a refused
one adds ``error="invalid_token"`` and the public reason, a wrong role ``insufficient_scope``.
Handlers raise; ``backend.api.errors.api_error_handler`` turns the ApiError into the response.
"""

from __future__ import annotations

from starlette.requests import Request

from backend.auth.tokens import Claims, InvalidTokenError, Role, TokenService
from backend.errors import ApiError

REALM = "questcity"
_CHALLENGE = f'Bearer realm="{REALM}"'


def bearer_claims(request: Request, tokens: TokenService) -> Claims:
    """The verified claims of the request's ``Authorization: Bearer`` token, or a 401 ApiError."""
    token = _bearer_token(request)
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "This endpoint needs a token: send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    try:
        return tokens.verify(token)
    except InvalidTokenError as exc:
        # Reasons are fixed strings without quotes, so they are safe inside the header value.
        challenge = f'{_CHALLENGE}, error="invalid_token", error_description="{exc.reason}"'
        raise ApiError(
            401, "unauthorized", exc.reason, headers={"WWW-Authenticate": challenge}
        ) from None


def require_role(claims: Claims, *roles: Role) -> Claims:
    """``claims`` if its role satisfies one of ``roles`` (admin covers operator), else a 403."""
    if not roles:
        raise ValueError("require_role needs at least one role")
    if any(claims.role.satisfies(role) for role in roles):
        return claims
    wanted = " or ".join(role.value for role in roles)
    raise ApiError(
        403,
        "forbidden",
        f"This action needs the {wanted} role.",
        headers={"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope"'},
    )


def authorize(request: Request, tokens: TokenService, *roles: Role) -> Claims:
    """:func:`bearer_claims`, then :func:`require_role` when ``roles`` are given."""
    claims = bearer_claims(request, tokens)
    return require_role(claims, *roles) if roles else claims


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme (Basic...) is no Bearer token at all: a plain challenge
    return credentials.strip()  # "" is refused by verify() as a malformed token
