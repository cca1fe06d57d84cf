"""JSON request bodies parsed within bounds: what a client sends can be refused, never crash us.

Python's :func:`json.loads` recurses once per nesting level (30,000 levels raise
``RecursionError``), converts integer literals of any length (past 4,300 digits it raises
``ValueError``; below that the conversion is quadratic), reads ``1e999`` as infinity, accepts
``NaN``/``Infinity`` (not JSON, RFC 8259 §6) and unpaired surrogate escapes (``"\\ud800"``, text
no encoder can write back, so a name echoed in an error answer would crash it). Each of those
becomes a :class:`JsonRejected` with a message for the client, checked before or while parsing so
that its cost stays linear in the body's size. Unpaired surrogates in *values* are left to the
field checks (``backend.domain``), which name the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

MAX_DEPTH = 32
"""Arrays and objects nested deeper than this are refused; the API's documents use two levels."""

MAX_NUMBER_CHARS = 100
"""Number literals longer than this (sign, digits, point and exponent) are refused."""

_STRUCTURE = re.compile(r'[\[\]{}"\\]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRejected(ValueError):
    """A body that is not JSON we accept; ``code`` is the API's error code, the message is for
    the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _too_deep() -> JsonRejected:
    return JsonRejected(
        "json_too_complex",
        f"The request body nests arrays or objects more than {MAX_DEPTH} levels deep; "
        "send a flatter document.",
    )


def _number_too_long() -> JsonRejected:
    return JsonRejected(
        "json_too_complex",
        f"A number in the request body is longer than {MAX_NUMBER_CHARS} characters; "
        "send a smaller number.",
    )


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _number_too_long()
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _number_too_long()
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRejected(
            "malformed_json",
            "A number in the request body is too large to represent; send a smaller number.",
        )
    return value


def _parse_constant(literal: str) -> object:
    raise JsonRejected(
        "malformed_json",
        f"{literal} is not JSON (RFC 8259 has no NaN or Infinity); send a number or null.",
    )


def _deeper_than(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``: one pass, no recursion."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: too few brackets to be that deep, no scan needed
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _STRUCTURE.finditer(text):
        position, char = match.start(), match.group()
        if in_string:
            if position == escaped_at:
                continue
            if char == "\\":
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _key_with_unpaired_surrogate(value: object) -> bool:
    for key in _keys(value):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def loads(raw: bytes) -> object:
    """``raw`` (UTF-8 JSON text) as Python values; :class:`JsonRejected` if it is not JSON, or
    not within :data:`MAX_DEPTH` and :data:`MAX_NUMBER_CHARS`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRejected(
            "malformed_json", "The request body is not UTF-8 text; send JSON encoded as UTF-8."
        ) from None
    if _deeper_than(text, MAX_DEPTH):
        raise _too_deep()
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as error:
        raise JsonRejected(
            "malformed_json",
            f"The request body is not valid JSON: {error.msg} "
            f"(line {error.lineno}, column {error.colno}).",
        ) from None
    except RecursionError:  # the depth scan should make this unreachable; never a 500 anyway
        raise _too_deep() from None
    if _SURROGATE_ESCAPE.search(text) and _key_with_unpaired_surrogate(value):
        raise JsonRejected(
            "malformed_json",
            "A name in the request body has an unpaired surrogate escape (such as \\ud800), "
            "which is not Unicode text; use the API's field names.",
        )
    return value
