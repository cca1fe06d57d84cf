"""Errors as the API shows them: JSON ``{"error": code, "message": text}`` with a stable code.

Handlers raise :class:`~backend.errors.ApiError` (defined at the bottom of the backend, so that the
services below this layer may raise it too; re-exported here); nothing else reaches a client. An
unexpected exception becomes a 500 with a generic body (the details go to the log only): never a
stack trace or a host name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backend.degradation import unavailable
from backend.errors import ApiError
from shared.resilience import RequestDeadlineError

__all__ = [
    "ApiError",
    "api_error_handler",
    "budget_spent_handler",
    "error_response",
    "http_exception_handler",
    "unexpected_error_handler",
]

logger = logging.getLogger("backend.api")


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message, **(extra or {})}, status_code=status, headers=headers
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers, extra=exc.extra)


async def budget_spent_handler(request: Request, exc: Exception) -> Response:
    """The 503 for a request whose budget (:mod:`backend.request_budget`) ran out waiting on a
    dependency no route caught."""
    assert isinstance(exc, RequestDeadlineError)
    return await api_error_handler(request, unavailable(exc.name, exc))


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    logger.exception(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        extra={"event": "unhandled_error", "path": request.url.path},
    )
    return error_response(500, "internal_error", "Something went wrong on our side.")
