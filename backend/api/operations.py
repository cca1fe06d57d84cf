"""What each handler takes and answers, declared beside it: the OpenAPI document is built from
these declarations, the route table and the models (:mod:`backend.api.openapi`).

    @operation(Operation("getQuest", "Read a quest", "quests", {200: Reply(...), **errors(404)}))
    async def get_quest(request: Request) -> Response: ...

A declaration says nothing the handler does not do: tests drive the app from the document
(schemathesis) and refuse any answer it does not list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

from backend.api.models.base import Request

JSON = "application/json"

Schema = dict[str, object]
Shape = type[BaseModel] | tuple[type[BaseModel], ...] | Schema
"""A body: a model, one of several models (a tuple), or a JSON Schema for what no model holds
(images, the metrics text)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented answer."""

    description: str
    body: Shape | None = None
    media: tuple[str, ...] = (JSON,)
    """Media types the body is sent as (each with the same shape)."""
    headers: tuple[str, ...] = ()
    """Names of shared response headers (``backend.api.openapi_parts``) the answer may carry."""
    links: tuple[str, ...] = ()
    """Operations whose ``{id}`` is this answer's ``id``: where a client goes next."""
    alternatives: Mapping[str, Shape] = field(default_factory=dict)
    """Other media types with a shape of their own (``application/health+json``)."""


@dataclass(frozen=True, slots=True)
class RawBody:
    """A request body that is not JSON (image uploads)."""

    description: str
    media: tuple[str, ...]
    schema: Schema


Security = Literal["none", "bearer", "optional"]


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    summary: str
    tag: str
    answers: Mapping[int, Reply | str]
    """Status → its answer, or the name of a shared answer (``"NotFound"``); see :func:`errors`."""
    description: str | None = None
    body: type[Request] | RawBody | None = None
    body_description: str = ""
    query: type[Request] | None = None
    """A model whose fields are the query parameters."""
    headers: tuple[str, ...] = ()
    """Names of shared request header parameters (``"IdempotencyKey"``)."""
    path: Mapping[str, str] = field(default_factory=dict)
    """``{name}`` in the route's path → what it names."""
    security: Security = "none"


_SHARED = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationFailed",
    503: "ServiceUnavailable",
}


def errors(*statuses: int) -> dict[int, Reply | str]:
    """The shared answers for ``statuses``: ``{**errors(401, 404)}``."""
    return {status: _SHARED[status] for status in statuses}


Handler = TypeVar("Handler", bound=Callable[..., object])

_DECLARED: dict[Callable[..., object], Operation] = {}


def operation(declared: Operation) -> Callable[[Handler], Handler]:
    """Declare what the decorated handler takes and answers."""

    def declare(handler: Handler) -> Handler:
        _DECLARED[handler] = declared
        return handler

    return declare


def declared(handler: Callable[..., object]) -> Operation:
    try:
        return _DECLARED[handler]
    except KeyError:
        name = getattr(handler, "__qualname__", repr(handler))
        raise LookupError(f"{name} has no @operation declaration") from None
