"""The OpenAPI document of every route (DESIGN §7), served at ``GET /openapi.json``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from backend.api.openapi_document import openapi_json


async def openapi_endpoint(request: Request) -> Response:
    return Response(openapi_json(), media_type="application/json")
