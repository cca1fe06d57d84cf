"""A target's health answer, read as hostile input: every field the monitor keeps is checked
against what the store holds and what screens show, before it becomes a record.

An answer that breaks a bound is not clipped into something plausible: the check fails with a
plain reason (:class:`AnswerRejected`), so an operator sees that the target's health API is
broken rather than a quietly different picture of it. Only ``details`` (operators' free-form
figures, never a key) is trimmed rather than refused.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime

from monitor.store.models import Instance, ServiceSample, Status

MAX_SERVICES = 64
"""Services one target may report. QuestCity's backend has a handful; each one is a component on
the status page and in the TUI, so a target reporting thousands would swamp both."""
SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Service names are keys in the store and words on screens: letters, digits, ``_ . -``, at most
64 characters. Anything else (markup like ``[/]``, spaces, control characters) is refused."""
BREAKER_STATE = re.compile(r"[A-Za-z_-]{1,20}")
"""A breaker's state word (``closed``, ``open``, ``half_open``), as the store's column holds."""
MAX_INT = 2**31 - 1
"""The store's INTEGER columns are 32-bit on PostgreSQL."""
MAX_MS = 1e9
"""A response time in ms (about 11 days): anything larger is not a measurement."""
MAX_TEXT = 200
"""Characters kept of a string in ``details`` (after control characters are dropped)."""
MAX_DETAIL_KEYS = 32
MAX_DETAIL_DEPTH = 4
MAX_INSTANCE_ID = 100
"""Characters of an instance id (the backend's ``QUESTCITY_INSTANCE_ID`` has at most as many)."""
MAX_TIMESTAMP_TEXT = 64
LATEST_START = 2**33
"""An epoch second past the year 2200 is not when a running process started."""

OUT_OF_RANGE = "answer out of range"
INVALID_JSON = "invalid JSON"
UNEXPECTED_JSON = "unexpected JSON"
TOO_MANY_SERVICES = f"too many services (more than {MAX_SERVICES})"
BAD_SERVICE_NAME = "service name not allowed"


class AnswerRejected(ValueError):
    """The answer cannot be recorded as it is; ``reason`` is the check's plain error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(body: bytes) -> dict[str, object]:
    """The health document in ``body``: a JSON object with a ``status``."""
    try:
        document = json.loads(body, parse_constant=_no_constant)
    except RecursionError:  # nested deeper than the interpreter's stack allows
        raise AnswerRejected(INVALID_JSON) from None
    except ValueError:  # not JSON, not UTF-8, NaN/Infinity, an integer over 4,300 digits
        raise AnswerRejected(INVALID_JSON) from None
    if not isinstance(document, dict) or "status" not in document:
        raise AnswerRejected(UNEXPECTED_JSON)
    return document


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number the monitor keeps")


def services(document: Mapping[str, object]) -> tuple[ServiceSample, ...]:
    """The per-service samples of a ``/detailed`` answer, bounded (or :class:`AnswerRejected`)."""
    checks = document.get("checks")
    if not isinstance(checks, dict):
        return ()
    if len(checks) > MAX_SERVICES:
        raise AnswerRejected(TOO_MANY_SERVICES)
    samples = []
    for name, raw in sorted(checks.items()):
        if not SERVICE_NAME.fullmatch(name):
            raise AnswerRejected(BAD_SERVICE_NAME)
        if not isinstance(raw, dict) or raw.get("status") == "not_configured":
            continue
        breaker = raw.get("circuit_breaker")
        details: dict[str, object] = {}
        if isinstance(breaker, dict):
            details["circuit_breaker"] = plain(breaker, 1)
        for key in (
            "details",
            "availability_percent",
            "average_response_time_ms",
            "critical",
            "reason",
            "last_error",
        ):
            if raw.get(key) is not None:
                details[key] = plain(raw[key], 1)
        if (error_at := _epoch(raw.get("last_error_at"))) is not None:
            details["last_error_at"] = error_at  # the error's age on screens; dropped if unusable
        status = Status.parse(raw.get("status"))
        if status is Status.HEALTHY:
            # A healthy service has no last error: a backend before #14 kept reporting one for
            # ever (a start-up's "ObjectStoreError" on a healthy row); its history is counters.
            details.pop("last_error", None)
            details.pop("last_error_at", None)
        samples.append(
            ServiceSample(
                service=name,
                status=status,
                response_ms=_milliseconds(raw.get("response_time_ms")),
                consecutive_failures=_count(raw.get("consecutive_failures")),
                breaker_state=_breaker_state(breaker),
                details=details,
            )
        )
    return tuple(samples)


def instance(document: Mapping[str, object]) -> Instance | None:
    """Which process answered (``instance`` in ``/detailed``), or None when it did not say or
    said something unusable. Never refuses the check: the instance is a label, not a figure.

    ``id``: at most :data:`MAX_INSTANCE_ID` printable characters (no control, format or
    separator characters other than a space: it is shown on screens and stored as a key), else
    no instance at all. ``started_at``: seconds since the epoch, or an ISO-8601 time (one without
    a zone is UTC); anything else is None."""
    raw = document.get("instance")
    if not isinstance(raw, dict):
        return None
    name = raw.get("id")
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_INSTANCE_ID
        or not name.isprintable()
        or not name.strip()
    ):
        return None
    return Instance(id=name, started_at=_started_at(raw.get("started_at")))


def _started_at(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value) if not isinstance(value, int) or abs(value) < 2**53 else math.nan
    elif isinstance(value, str) and len(value) <= MAX_TIMESTAMP_TEXT:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            seconds = moment.timestamp()
        except (OverflowError, ValueError, OSError):
            return None
    else:
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds < LATEST_START else None


def _epoch(value: object) -> float | None:
    """Seconds since the epoch, or None for anything else (a label's time, never a figure that
    fails the check)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value) if not isinstance(value, int) or abs(value) < 2**53 else math.nan
    return seconds if math.isfinite(seconds) and 0 <= seconds < LATEST_START else None


def _milliseconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= MAX_MS:  # also refuses an int too large for a float
        raise AnswerRejected(OUT_OF_RANGE)
    return float(value)


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if not 0 <= value <= MAX_INT:
        raise AnswerRejected(OUT_OF_RANGE)
    return value


def _breaker_state(breaker: object) -> str | None:
    if not isinstance(breaker, dict) or "state" not in breaker:
        return None
    state = breaker["state"]
    if not isinstance(state, str) or not BREAKER_STATE.fullmatch(state):
        raise AnswerRejected(OUT_OF_RANGE)
    return state


def plain(value: object, depth: int = 0) -> object:
    """``value`` trimmed to what operators' screens and the store's JSON should hold: finite
    numbers within 64 bits, strings of printable characters cut at ``MAX_TEXT``, at most
    ``MAX_DETAIL_KEYS`` entries per level and ``MAX_DETAIL_DEPTH`` levels (deeper ones dropped)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return text(value)
    if depth >= MAX_DETAIL_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            text(str(k), 64): plain(v, depth + 1) for k, v in list(value.items())[:MAX_DETAIL_KEYS]
        }
    if isinstance(value, list):
        return [plain(v, depth + 1) for v in value[:MAX_DETAIL_KEYS]]
    return None


def text(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` without control or format characters (newlines, ANSI escapes, bidi overrides),
    at most ``limit`` characters."""
    kept = "".join(c for c in value[: limit * 4] if unicodedata.category(c)[0] != "C")
    return kept[:limit]
