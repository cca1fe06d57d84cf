"""The two kinds of model: what a client sends (refused when it is not so) and what it is sent."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    """A request body or query string. Unknown members are refused with ``unknown_field``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unknown_field: ClassVar[str] = "is not a field of this request"


class Answer(BaseModel):
    """A response body, as the document shows it: every member named and present."""

    model_config = ConfigDict(extra="forbid")


def absent(**constraints: Any) -> Any:
    """The default of a member that may be left out but, when sent, holds a value (never null):
    pydantic does not check defaults, and the document shows the member as optional, not
    nullable."""
    return Field(default=None, **constraints)
