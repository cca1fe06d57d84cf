"""Requests checked against their models, refusals told as the API tells them.

A refused request is a 422 ``invalid_request`` whose ``fields`` maps each field at fault to one
sentence (the first fault found in it): the sentences of :class:`~backend.api.models.fields.Says`,
of a rule checked in Python, or the defaults below. A fault of the whole body is ``body``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from annotated_types import Ge, Le
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from backend.api.models.base import Request
from backend.api.models.fields import NOT_STORABLE, Says
from backend.domain import InvalidInput, storable

M = TypeVar("M", bound=Request)

_WRONG_TYPE = {"string_type", "int_type", "int_parsing", "int_from_float", "bool_type"}
_OUT_OF_RANGE = {"greater_than_equal", "less_than_equal"}


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """``data`` as ``model``; :class:`InvalidInput` (field → sentence) when it is not one."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(refusals(model, error)) from None


def refusals(model: type[Request], error: ValidationError) -> dict[str, str]:
    found: dict[str, str] = {}
    # Unknown members first, as a client fixing a typo wants to read that before the rest.
    details = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    for detail in details:
        loc = detail["loc"]
        name = str(loc[0]) if loc else "body"
        found.setdefault(name, _sentence(model, name, detail))
    return found


def _sentence(model: type[Request], name: str, detail: ErrorDetails) -> str:
    kind, value, ctx = detail["type"], detail["input"], detail.get("ctx") or {}
    if kind == "extra_forbidden":
        return model.unknown_field
    field = model.model_fields.get(name)
    metadata = field.metadata if field is not None else []
    says = next((m for m in metadata if isinstance(m, Says)), Says())
    if isinstance(value, str) and (kind == "string_unicode" or not storable(value)):
        return NOT_STORABLE
    if kind == "missing":
        return says.missing
    if kind in _WRONG_TYPE:
        return says.wrong_type
    if kind == "string_too_short":
        return says.too_short or "must not be empty"
    if kind == "string_too_long":
        return says.too_long or f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return says.pattern or "is not in the documented form"
    if kind in _OUT_OF_RANGE:
        low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
        high = next((m.le for m in metadata if isinstance(m, Le)), None)
        return f"must be between {low} and {high}"
    return str(detail["msg"])  # a rule checked in Python: its own sentence
