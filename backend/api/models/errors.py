"""Error bodies: ``{"error": code, "message": text}``, with the members some errors add."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from backend.api.models.base import Answer, absent


class Error(Answer):
    """Every error the API answers. Some errors add members (see below)."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="A stable, machine-readable code.")
    message: str = Field(description="What went wrong, for people.")


class ValidationError(Error):
    """A request the API understood but cannot accept (422). `fields` is present when particular
    fields are at fault."""

    fields: dict[str, str] = absent(description="Field name → what is wrong with it.")


class ServiceUnavailableError(Error):
    """A dependency is down, overloaded or not configured (503)."""

    error: Literal["service_unavailable", "overloaded", "not_configured"]
    service: Literal["database", "s3"] = Field(
        description="The dependency that cannot serve the request now."
    )


class TooManyAttemptsError(Error):
    error: Literal["too_many_attempts"]
    retry_after: int = Field(ge=1)


class PayloadTooLargeError(Error):
    error: Literal["payload_too_large"]
    limit_bytes: int = absent(ge=1)
