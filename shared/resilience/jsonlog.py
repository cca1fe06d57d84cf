"""Structured logs: one JSON object per line, carrying every ``extra`` field a record has.

The policy library logs through :mod:`logging` with structured ``extra`` fields (``event``,
``policy``, ``attempt``, ``wait``, ``cause``, ``breaker``, ``from_state``...);
:class:`JsonFormatter` keeps them as top-level keys, so a log pipeline can filter on
``event == "retry_gave_up"`` without parsing messages::

    {"ts": "2024-01-15T10:32:25.123Z", "level": "WARNING", "logger": "shared.resilience.retry",
     "message": "database: attempt 1 of 3 failed (ConnectionRefusedError); retrying in 0.250 s",
     "event": "retry", "policy": "database", "attempt": 1, "max_attempts": 3, "wait": 0.25, ...}

:func:`configure_logging` installs it on the root logger, once, at the composition root;
:func:`log_fields` then adds what names the process (``instance``) to every line it writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import PurePath
from typing import TextIO

__all__ = ["NOISY_LOGGERS", "JsonFormatter", "configure_logging", "log_fields"]

NOISY_LOGGERS: tuple[str, ...] = (
    "aiobotocore",
    "botocore",
    "s3transfer",
    "urllib3",
    "asyncio",
    "aiosqlite",
    "httpcore",  # debug: a line per connection step, host and port included
    "httpx",  # info: "HTTP Request: GET <url>" per request, the URL's user info and query too
    "alembic",  # a line per plugin and per migration context at every start
    "apscheduler",  # info: two lines per job run (200 a second at 1,000 checks every 10 s)
)
"""Libraries whose debug (and info) output drowns the application's; set to WARNING. Some would
also leak: httpx writes every request's whole URL, password and token included (a check's url,
a webhook's), and the monitor's checks would add a line per request on its hot path."""

# Attributes every LogRecord has (plus the two that Formatter.format adds, and 3.12's taskName):
# anything else on a record came in through ``extra=``. uvicorn's ``color_message`` repeats the
# message with terminal escapes, which have no place in a log pipeline.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_CORE_FIELDS = ("ts", "level", "logger", "message")
_EXCEPTION_FIELDS = ("exc_type", "exc_message", "exc_notes", "traceback", "stack")


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON.

    Keys: ``ts`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``; then every
    ``extra`` field; then, for a record with ``exc_info``, ``exc_type`` (qualified name),
    ``exc_message`` (one line), ``exc_notes`` (when the exception has notes, as the retry policy's
    give-up note) and ``traceback`` (the full text, JSON-escaped so the record stays one line);
    ``stack`` for ``stack_info``. An ``extra`` key that collides with one of these is kept under
    ``extra_<key>``. Values JSON cannot encode are written as strings; formatting never raises.

    ``fields`` come after the core four on every line (the process's identity, named once:
    one dict merge a line, nothing for callers to pass); a record's own ``extra`` of the same
    name wins.
    """

    def __init__(self, *, fields: Mapping[str, object] | None = None) -> None:
        super().__init__()
        self.fields: Mapping[str, object] = _checked_fields(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        try:
            return _dumps(self._payload(record))
        except Exception as exc:  # a log line must never take the caller down
            return _dumps(
                {
                    "ts": _rfc3339(record.created),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": str(record.msg),
                    "format_error": f"{type(exc).__name__}: {exc}",
                }
            )

    def _payload(self, record: logging.LogRecord) -> dict[str, object]:
        payload: dict[str, object] = {
            "ts": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(self.fields)
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS:
                continue
            if key in _CORE_FIELDS or key in _EXCEPTION_FIELDS:
                key = f"extra_{key}"
            payload[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            payload["exc_type"] = _qualified_name(type(exc))
            payload["exc_message"] = _one_line(str(exc))
            notes = getattr(exc, "__notes__", None)
            if isinstance(notes, list) and notes:
                payload["exc_notes"] = [_one_line(str(note)) for note in notes]
            if not record.exc_text:  # cached on the record, as logging.Formatter does
                record.exc_text = self.formatException(record.exc_info)
            payload["traceback"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return payload


def _checked_fields(fields: Mapping[str, object]) -> dict[str, object]:
    clashes = sorted(set(fields) & {*_CORE_FIELDS, *_EXCEPTION_FIELDS})
    if clashes:
        raise ValueError(f"log fields {clashes} would hide a standard key of every line")
    return dict(fields)


def _rfc3339(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _dumps(payload: dict[str, object]) -> str:
    try:
        return json.dumps(payload, default=_encode, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere, or a reference cycle
        return json.dumps(_finite(payload), default=_encode, ensure_ascii=False)


def _encode(value: object) -> object:
    """What JSON cannot encode natively, as something it can."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, BaseException):
        return f"{_qualified_name(type(value))}: {_one_line(str(value))}"
    if isinstance(value, PurePath):
        return str(value)
    return repr(value)


def _finite(value: object, depth: int = 0) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if depth > 8:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, depth + 1) for v in value]
    return value


class _JsonHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs; its type is how a second call finds it."""


def configure_logging(
    level: int | str = "INFO",
    stream: TextIO | None = None,
    *,
    quiet: Iterable[str] = NOISY_LOGGERS,
) -> logging.Handler:
    """Send every log record to ``stream`` (default: ``sys.stderr`` at call time) as JSON lines.

    Installs one :class:`JsonFormatter` handler on the root logger and sets the root level.
    Idempotent: a second call reconfigures the same handler (level, stream) instead of adding
    another. Handlers that others installed (pytest's capture, for one) are left alone. The
    loggers named in ``quiet`` are set to WARNING. Returns the handler.
    """
    root = logging.getLogger()
    root.setLevel(level)  # first: a bad level fails before anything is installed
    target = stream if stream is not None else sys.stderr
    handler = next((h for h in root.handlers if isinstance(h, _JsonHandler)), None)
    if handler is None:
        handler = _JsonHandler(target)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    elif handler.stream is not target:
        handler.setStream(target)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


@contextlib.contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """While the block runs, every line of the handler :func:`configure_logging` installed
    carries ``fields`` (``with log_fields(instance="api-2"):`` around a server's life).

    Nothing changes without that handler (a test capturing records its own way). Blocks nest:
    an inner one adds to the outer's fields, and each puts back what it found.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _JsonHandler)), None)
    formatter = handler.formatter if handler is not None else None
    if not isinstance(formatter, JsonFormatter):
        yield
        return
    previous = formatter.fields
    formatter.fields = {**previous, **_checked_fields(fields)}
    try:
        yield
    finally:
        formatter.fields = previous
