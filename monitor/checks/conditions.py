"""The condition language of ``[[checks]]``: Gatus's, with a regular expression of our own.

A condition is ``LEFT OP RIGHT`` on one line, at most 500 characters: ``[STATUS] == 200``. Each
run judges every condition; one that fails is recorded with the value its left side had
(``[STATUS] == 200 failed: got 503``), cut to 60 printable characters.

**LEFT**, a placeholder (its name in capitals, any case accepted):

- ``[STATUS]``: the HTTP status code (http).
- ``[RESPONSE_TIME]``: milliseconds the run took to get its answer (every kind).
- ``[BODY]``: http: the response body (its first 1 MiB, decoded as UTF-8 with replacement);
  tcp: what the server sent back (its first 64 KiB); dns: the answers as dnspython writes them
  (``10.0.0.5``, ``10 mail.example.org.``), sorted, one space between.
- ``[BODY].a.b[0].c`` (http): a value in the JSON body: ``.key`` steps into an object, ``[N]``
  into an array (from 0), ``[BODY][0].id`` when the body is an array. A key is a run of any
  characters but ``.[]()"=!<>`` and spaces; at most 32 steps. The body is parsed once per run,
  and only when it is at most 1 MiB and at most as deep as Python's recursion allows.
- ``len([BODY])``, ``len([BODY].items)``: how many items an array or object has, or how many
  characters a string has; ``len([BODY])`` of a body that is not a JSON array or object counts
  its characters. ``len()`` of a number, true, false or null has no value.
- ``[CONNECTED]``: whether it connected (http, tcp, tls, postgres).
- ``[DNS_RCODE]``: the answer's response code, ``NOERROR``, ``NXDOMAIN``, ``SERVFAIL``,
  ``REFUSED``… (dns).
- ``[CERTIFICATE_EXPIRATION]``: the time left until the certificate expires, negative once it
  has (tls; http with an ``https://`` url).

Each kind has these: http ``[STATUS] [BODY] [RESPONSE_TIME] [CONNECTED]
[CERTIFICATE_EXPIRATION]``; tcp ``[CONNECTED] [BODY] [RESPONSE_TIME]``; dns ``[DNS_RCODE]
[BODY] [RESPONSE_TIME]``; tls ``[CONNECTED] [CERTIFICATE_EXPIRATION] [RESPONSE_TIME]``;
postgres ``[CONNECTED] [RESPONSE_TIME]``.

**OP**: ``==`` ``!=`` ``<`` ``<=`` ``>`` ``>=``.

**RIGHT**:

- a number: ``200``, ``-1.5``, ``2e3``;
- ``true`` or ``false``;
- text, bare (``alive``: the ends stripped, inner spaces kept) or in double quotes
  (``" two words "``: everything between the first and the last quote, as it is, no escapes);
  a quoted value is always text, never a number;
- a duration: a number and a unit, ``ms`` ``s`` ``m`` ``h`` ``d`` (``90s``, ``30m``, ``48h``,
  ``14d``);
- ``pat(GLOB)``: the whole value matches GLOB, where ``*`` is any run of characters (none
  included) and every other character is itself: ``pat(*alive*)`` contains ``alive``,
  ``pat(2*)`` starts with ``2``;
- ``any(A, B, C)``: equal to one of the values (numbers or text; quote one that has a comma);
- ``re(REGEX)`` (ours): REGEX (the ``regex`` module's syntax) is found somewhere in the value —
  anchor it (``^…$``) to match the whole. It is tried on the value's first 64 KiB. A run's
  ``re()`` conditions share 50 ms in all (20 of them must not hold the monitor for a second):
  the one that runs out of it fails with "pattern gave up after 50 ms" (or, when others had
  used some first, with the next message), and any tried after it fail with "pattern gave up:
  the run's 50 ms for patterns was spent".

``pat()``, ``any()`` and ``re()`` go with ``==`` (matches) or ``!=`` (does not). What each
placeholder takes: ``[STATUS]`` and ``len(…)`` a number, ``any()`` of numbers, ``pat()`` or
``re()``; ``[RESPONSE_TIME]`` milliseconds or a duration; ``[CERTIFICATE_EXPIRATION]`` a
duration (``[CERTIFICATE_EXPIRATION] > 14d``); ``[CONNECTED]`` ``true`` or ``false`` with
``==`` or ``!=``; ``[DNS_RCODE]`` a code name or ``any()`` of them with ``==`` or ``!=`` (any
case); ``[BODY]`` and its paths anything.

**Comparing**: when both sides are numbers — a JSON number, or text that is one (``"200"`` in
a body, an unquoted ``200`` on the right) — numerically; otherwise as text, case-sensitively,
ordered by code point. JSON ``true``, ``false`` and ``null`` are those words as text; an array
or object is its compact JSON. A placeholder with no value in a run (no status because nothing
answered, a path the body does not have, a body that is not JSON, no certificate) fails the
condition whatever the operator.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.checks.spec import ERROR_CHARS, OBSERVED_CHARS, ConditionResult
from monitor.checks.syntax import (
    HTTP_DEFAULT,
    MAX_CONDITION_CHARS,
    PLACEHOLDERS,
    AnyOf,
    Condition,
    ConditionError,
    Glob,
    Literal,
    Pattern,
    number,
    parse_condition,
)
from shared.resilience.sanitize import one_line

__all__ = [
    "GAVE_UP",
    "HTTP_DEFAULT",
    "MAX_CONDITION_CHARS",
    "PATTERNS_SPENT",
    "PLACEHOLDERS",
    "Condition",
    "ConditionError",
    "Observation",
    "evaluate",
    "failed_text",
    "parse_condition",
]

JSON_CHARS = 1024 * 1024
"""A body longer than this is not parsed as JSON (its paths have no value)."""
REGEX_CHARS = 64 * 1024
REGEX_TIMEOUT = 0.05
"""Seconds all the ``re()`` conditions of one run may take together."""
GAVE_UP = "pattern gave up after 50 ms"
"""The observed value of a ``re()`` condition whose pattern ran out of the run's whole time."""
PATTERNS_SPENT = "pattern gave up: the run's 50 ms for patterns was spent"
"""The observed value of a ``re()`` condition left without time by the run's others."""
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Observation:
    """What a run saw, for its conditions: None where the kind has no such value."""

    status: int | None = None
    response_ms: float | None = None
    body: str | None = None
    connected: bool | None = None
    dns_rcode: str | None = None
    certificate_seconds: float | None = None
    """Seconds until the certificate expires (negative: expired)."""


# -- judging ----------------------------------------------------------------------------------


class _Missing:
    """No value: the placeholder does not apply, or the path is not in the body."""


_MISSING = _Missing()


class _Body:
    """The body as JSON, parsed at most once per run, and only when it is small enough."""

    def __init__(self, text: str | None) -> None:
        self.text = text
        self._parsed: object = None
        self._done = False

    def json(self) -> object:
        if not self._done:
            self._done = True
            self._parsed = _MISSING
            if self.text is not None and len(self.text) <= JSON_CHARS:
                # Not JSON, nested too deep, or a number too long: its paths have no value.
                with contextlib.suppress(ValueError, RecursionError):
                    self._parsed = json.loads(self.text)
        return self._parsed


class _Patterns:
    """What is left of the run's :data:`REGEX_TIMEOUT` for its ``re()`` conditions: the time
    each takes (its search, measured) is spent from it, whether it matched or not."""

    def __init__(self) -> None:
        self.left = REGEX_TIMEOUT

    def search(self, pattern: Pattern, text: str) -> bool | str:
        """Whether ``pattern`` is found in ``text``; :data:`GAVE_UP` or
        :data:`PATTERNS_SPENT` when the run's time ran out before it said."""
        if self.left <= 0.0:
            return PATTERNS_SPENT
        whole = self.left >= REGEX_TIMEOUT
        started = time.perf_counter()
        try:
            return pattern.compiled.search(text, timeout=self.left) is not None
        except TimeoutError:
            self.left = 0.0
            return GAVE_UP if whole else PATTERNS_SPENT
        finally:
            self.left = max(0.0, self.left - (time.perf_counter() - started))


def evaluate(conditions: Sequence[Condition], seen: Observation) -> tuple[ConditionResult, ...]:
    """Each condition judged against what one run saw (never raises for a body's doing). Call
    it once per run: its ``re()`` conditions share :data:`REGEX_TIMEOUT`."""
    body = _Body(seen.body)
    patterns = _Patterns()
    return tuple(_judge(condition, seen, body, patterns) for condition in conditions)


def _judge(
    condition: Condition, seen: Observation, body: _Body, patterns: _Patterns
) -> ConditionResult:
    value = _value(condition, seen, body)
    if isinstance(value, _Missing):
        return ConditionResult(condition.text, ok=False, observed=None)
    observed = _observed(condition, value)
    right = condition.right
    holds: bool
    if isinstance(right, Pattern):
        found = patterns.search(right, _text(value)[:REGEX_CHARS])
        if isinstance(found, str):  # gave up: neither matched nor not
            return ConditionResult(condition.text, ok=False, observed=found)
        holds = found == (condition.op == "==")
    elif isinstance(right, Glob):
        holds = _glob(right.pattern, _text(value)) == (condition.op == "==")
    elif isinstance(right, AnyOf):
        equal = any(_compare(value, "==", item) for item in right.values)
        holds = equal == (condition.op == "==")
    else:
        holds = _compare(value, condition.op, right)
    return ConditionResult(condition.text, ok=holds, observed=observed)


def _value(condition: Condition, seen: Observation, body: _Body) -> object:
    """The left side's value: a number, a bool, text, or a JSON value; :data:`_MISSING`."""
    name = condition.placeholder
    if name != "BODY":
        found: object = {
            "STATUS": seen.status,
            "RESPONSE_TIME": seen.response_ms,
            "CONNECTED": seen.connected,
            "DNS_RCODE": None if seen.dns_rcode is None else seen.dns_rcode.upper(),
            "CERTIFICATE_EXPIRATION": seen.certificate_seconds,
        }.get(name)
        return _MISSING if found is None else found
    if seen.body is None:
        return _MISSING
    if not condition.path and not condition.length:
        return seen.body
    value = body.json()
    for step in condition.path:
        value = _step(value, step)
        if value is _MISSING:
            return _MISSING
    if not condition.length:
        return value
    if not condition.path:  # the whole body: its items when it is an array or object
        return len(value) if isinstance(value, list | dict) else len(seen.body)
    return len(value) if isinstance(value, list | dict | str) else _MISSING


def _step(value: object, step: str | int) -> object:
    """``value[step]``: an array's item, an object's member; :data:`_MISSING` if none."""
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else _MISSING
    return value[step] if isinstance(value, dict) and step in value else _MISSING


def _compare(value: object, op: str, right: Literal) -> bool:
    left = _asnumber(value)
    if left is not None and right.number is not None:
        return _OPERATORS[op](left, right.number)
    return _OPERATORS[op](_text(value), right.text)


def _asnumber(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return number(value) if isinstance(value, str) else None


def _text(value: object) -> str:
    """A value as text: itself, true/false/null, a number as JSON writes it, compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):  # too deep to write back
        return "[…]" if isinstance(value, list) else "{…}"


def _glob(pattern: str, text: str) -> bool:
    """Whether all of ``text`` matches ``pattern``, ``*`` any run of characters (linear: the
    pieces between stars are found left to right, no backtracking)."""
    first, *pieces = pattern.split("*")
    if not pieces:
        return text == pattern
    last = pieces.pop()
    if len(text) < len(first) + len(last) or not text.startswith(first):
        return False
    if not text.endswith(last):
        return False
    at, end = len(first), len(text) - len(last)
    for piece in pieces:
        found = text.find(piece, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def _observed(condition: Condition, value: object) -> str:
    name = condition.placeholder
    if condition.length or name in ("STATUS", "DNS_RCODE"):
        shown = str(value)
    elif name == "RESPONSE_TIME" and isinstance(value, int | float):
        shown = f"{value:.0f} ms"
    elif name == "CERTIFICATE_EXPIRATION" and isinstance(value, int | float):
        shown = _span(value)
    elif isinstance(value, str):
        shown = f'"{value[: OBSERVED_CHARS * 4]}"'
    else:
        shown = _text(value)[: OBSERVED_CHARS * 4]
    return one_line(shown, OBSERVED_CHARS)


def _span(seconds: float) -> str:
    """``20d 3h``, ``45m 10s``; ``expired 2d 1h ago``."""
    if not math.isfinite(seconds):
        return str(seconds)
    left = int(abs(seconds))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    start = next((n for n, (amount, _) in enumerate(units) if amount), 3)
    text = " ".join(f"{amount}{unit}" for amount, unit in units[start : start + 2])
    return f"expired {text} ago" if seconds < 0 else text


def failed_text(results: Sequence[ConditionResult]) -> str | None:
    """``[STATUS] == 200 failed: got 503; [BODY].status == alive failed: got "dead"``, cut to
    :data:`ERROR_CHARS`; None when every condition held."""
    failed = [
        f"{one_line(result.condition, ERROR_CHARS)} failed: "
        + (
            "no value"
            if result.observed is None
            else result.observed
            if result.observed in (GAVE_UP, PATTERNS_SPENT)
            else f"got {result.observed}"
        )
        for result in results
        if not result.ok
    ]
    return one_line("; ".join(failed), ERROR_CHARS) if failed else None
