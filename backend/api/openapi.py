"""The OpenAPI document of every route (DESIGN §7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def openapi_endpoint(request: Request) -> Response:
    from backend.api.openapi_document import openapi_document

    return JSONResponse(openapi_document())
