"""The OpenAPI 3.1 document of every route, served at ``GET /openapi.json``
(docs/ARCHITECTURE.md §7).

Built, not written: the paths from the running app's route table, each operation from its
handler's declaration (:mod:`backend.api.operations`), every body's schema from its pydantic model
(:mod:`backend.api.models`), and the answers many routes share from
:mod:`backend.api.openapi_parts`. A route without a declaration fails the build.

Behaviour that depends on settings is described for the defaults: ``/api/v1/health/detailed`` and
``/api/v1/health/services/{name}`` need an operator or admin token (``QUESTCITY_HEALTH_DETAILS``
may make them public), and ``/metrics`` is public (``QUESTCITY_METRICS_PUBLIC=false`` makes it
need one).
"""

from __future__ import annotations

import asyncio
import copy
import json
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from backend.api import openapi_parts as parts
from backend.api.models.fields import PathId, PathName
from backend.api.operations import JSON, Operation, RawBody, Reply, Schema, Shape, declared
from backend.api.operations import operation as _operation
from backend.api.routing import handlers

OPENAPI_VERSION = "3.1.0"
_SCHEMAS = "#/components/schemas/{model}"


class _Builder:
    """One build: remembers the models and shared parts the operations use, so the components
    hold exactly those."""

    def __init__(self) -> None:
        self.models: dict[type[BaseModel], None] = {}
        self.responses: dict[str, None] = {}
        self.headers: dict[str, None] = {}
        self.parameters: dict[str, None] = {}

    def ref(self, model: type[BaseModel]) -> Schema:
        self.models[model] = None
        return {"$ref": _SCHEMAS.format(model=model.__name__)}

    def shape(self, shape: Shape) -> Schema:
        if isinstance(shape, dict):
            return shape
        if isinstance(shape, tuple):
            return {"oneOf": [self.ref(model) for model in shape]}
        return self.ref(shape)

    def reply(self, reply: Reply) -> Schema:
        answer: Schema = {"description": reply.description}
        if reply.headers:
            self.headers.update(dict.fromkeys(reply.headers))
            answer["headers"] = {
                parts.HEADER_NAMES[name]: {"$ref": f"#/components/headers/{name}"}
                for name in reply.headers
            }
        content: dict[str, object] = {}
        if reply.body is not None:
            content = {media: {"schema": self.shape(reply.body)} for media in reply.media}
        content |= {media: {"schema": self.shape(s)} for media, s in reply.alternatives.items()}
        if content:
            answer["content"] = content
        if reply.links:
            answer["links"] = {
                f"{target[0].upper()}{target[1:]}": {
                    "operationId": target,
                    "parameters": {"id": "$response.body#/id"},
                }
                for target in reply.links
            }
        return answer

    def answer(self, status: int, reply: Reply | str) -> Schema:
        if isinstance(reply, str):
            self.responses[reply] = None
            return {"$ref": f"#/components/responses/{reply}"}
        return self.reply(reply)

    def operation(self, route: Route, op: Operation) -> Schema:
        built: Schema = {"operationId": op.id, "summary": op.summary, "tags": [op.tag]}
        if op.description:
            built["description"] = op.description
        parameters = [*_path_parameters(route, op), *self._query(op), *self._header_refs(op)]
        if parameters:
            built["parameters"] = parameters
        if isinstance(op.body, RawBody):
            built["requestBody"] = {
                "description": op.body.description,
                "required": True,
                "content": {media: {"schema": op.body.schema} for media in op.body.media},
            }
        elif op.body is not None:
            built["requestBody"] = {
                "description": op.body_description or op.body.__doc__ or "",
                "required": True,
                "content": {JSON: {"schema": self.ref(op.body)}},
            }
        built["security"] = _SECURITY[op.security]
        built["responses"] = {
            str(status): self.answer(status, reply) for status, reply in sorted(op.answers.items())
        }
        return built

    def _query(self, op: Operation) -> Iterable[Schema]:
        if op.query is None:
            return
        schema = op.query.model_json_schema()
        required = set(schema.get("required", ()))
        for name, field in schema["properties"].items():
            field.pop("title", None)
            yield {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": field.pop("description", ""),
                "allowEmptyValue": True,
                "schema": field,
            }

    def _header_refs(self, op: Operation) -> Iterable[Schema]:
        for name in op.headers:
            self.parameters[name] = None
            yield {"$ref": f"#/components/parameters/{name}"}

    def schemas(self) -> dict[str, Any]:
        _, document = models_json_schema(
            [(model, "validation") for model in self.models], ref_template=_SCHEMAS
        )
        found: dict[str, Any] = document.get("$defs", {})
        for schema in found.values():
            _untitled(schema)
        return found


_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "none": [],
    "bearer": [{"bearerAuth": []}],
    "optional": [{}, {"bearerAuth": []}],
}


def _path_parameters(route: Route, op: Operation) -> Iterable[Schema]:
    for name in route.param_convertors:
        schema = TypeAdapter(PathId if name == "id" else PathName).json_schema()
        yield {
            "name": name,
            "in": "path",
            "required": True,
            "description": op.path.get(name, ""),
            "schema": schema,
        }


def _untitled(schema: dict[str, Any]) -> None:
    """Without the titles pydantic makes from names ("Owner Id"): they only repeat the names."""
    schema.pop("title", None)
    for field in schema.get("properties", {}).values():
        field.pop("title", None)
        if field.get("default", 0) is None and "anyOf" not in field:
            field.pop("default")  # absent, not null (an optional member that may not be null)


def openapi_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The document of ``routes``: every plain route, each of its methods."""
    builder = _Builder()
    paths: dict[str, dict[str, Schema]] = {}
    for route in routes:
        if not isinstance(route, Route):
            raise TypeError(f"{route!r}: only plain routes can be documented")
        for method, handler in handlers(route).items():
            paths.setdefault(route.path, {})[method.lower()] = builder.operation(
                route, declared(handler)
            )
    shared = parts.responses()
    responses = {name: builder.reply(shared[name]) for name in sorted(builder.responses)}
    headers = parts.headers()
    parameters = parts.header_parameters()
    return copy.deepcopy(  # the shared parts are module constants: callers get their own
        {
            "openapi": OPENAPI_VERSION,
            "info": parts.INFO,
            "tags": parts.TAGS,
            "paths": paths,
            "components": {
                "securitySchemes": parts.SECURITY_SCHEMES,
                "schemas": builder.schemas(),
                "parameters": {name: parameters[name] for name in sorted(builder.parameters)},
                "headers": {name: headers[name] for name in sorted(builder.headers)},
                "responses": responses,
            },
        }
    )


_SERVED: weakref.WeakKeyDictionary[object, bytes | asyncio.Task[bytes]] = (
    weakref.WeakKeyDictionary()
)
"""Per app: its document, or the build of it under way that every request meanwhile awaits."""


@_operation(
    Operation(
        "getOpenApiDocument",
        "This document",
        "meta",
        {200: Reply("The OpenAPI 3.1 document of this API.", {"type": "object"})},
    )
)
async def openapi_endpoint(request: Request) -> Response:
    """The document of the app serving the request, built on its first request."""
    return Response(await _served(request.app), media_type="application/json")


async def _served(app: Starlette) -> bytes:
    """The app's document, built once however many requests ask before it is ready.

    A build takes about a second and a hundred megabytes (the username rule's patterns scan all
    of Unicode), and the endpoint is public: one build per waiting request would let anyone
    exhaust a fresh replica. It runs in a thread so the probes and other requests are still
    answered meanwhile. A failed build is forgotten, so the next request tries again.
    """
    entry = _SERVED.get(app)
    if isinstance(entry, bytes):
        return entry
    loop = asyncio.get_running_loop()
    if entry is None or _stale(entry, loop):
        entry = loop.create_task(run_in_threadpool(serialised_document, app.routes))
        _SERVED[app] = entry
    try:
        # Shielded: a request that goes away does not cancel the build the others await.
        served = await asyncio.shield(entry)
    except Exception:
        if _SERVED.get(app) is entry:
            del _SERVED[app]
        raise
    _SERVED[app] = served
    return served


def _stale(build: asyncio.Task[bytes], loop: asyncio.AbstractEventLoop) -> bool:
    """A build no request can use: one that failed while no request awaited it, or one still
    running in an event loop other than this one (an app served by a second loop, as tests do)."""
    if build.done():
        return build.cancelled() or build.exception() is not None
    return build.get_loop() is not loop


def serialised_document(routes: Sequence[BaseRoute]) -> bytes:
    """The document as served: compact JSON. The one build :func:`openapi_endpoint` runs."""
    document = openapi_document(routes)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
