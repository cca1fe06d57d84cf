"""The condition language's syntax: a condition's text made a :class:`Condition`, or a
:class:`ConditionError` saying what is wrong and what to write. The language is described in
:mod:`monitor.checks.conditions` (which judges conditions and is what other modules import)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import regex

from monitor.checks.spec import OBSERVED_CHARS, CheckKind
from shared.resilience.sanitize import one_line

MAX_CONDITION_CHARS = 500
MAX_PATH_STEPS = 32
HTTP_DEFAULT = "[STATUS] < 400"
"""What an http check judges when no condition is written: the one copy, which the runner applies
(``monitor.checks.run.DEFAULT_CONDITIONS``) and the TUI's detail names."""

PLACEHOLDERS: dict[CheckKind, tuple[str, ...]] = {
    CheckKind.HTTP: ("STATUS", "BODY", "RESPONSE_TIME", "CONNECTED", "CERTIFICATE_EXPIRATION"),
    CheckKind.TCP: ("CONNECTED", "BODY", "RESPONSE_TIME"),
    CheckKind.DNS: ("DNS_RCODE", "BODY", "RESPONSE_TIME"),
    CheckKind.TLS: ("CONNECTED", "CERTIFICATE_EXPIRATION", "RESPONSE_TIME"),
    CheckKind.POSTGRES: ("CONNECTED", "RESPONSE_TIME"),
}
RCODES = (
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
    "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "BADVERS",
)  # fmt: skip
"""dnspython's names of the response codes (``dns.rcode.to_text``)."""

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_EQUALITY = ("==", "!=")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[([^\[\]]*)\](.*)", re.DOTALL)
_STEP = re.compile(r"\.([^.\[\]()\"=!<>\s]+)|\[(\d{1,9})\]")
_FUNCTION = re.compile(r"(pat|any|re)\s*\(", re.IGNORECASE)
_ARTICLE = {CheckKind.HTTP: "an"}


class ConditionError(ValueError):
    """A condition that cannot be parsed, or names a placeholder its kind does not have; the
    message says what is wrong and what to write instead."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A value to compare with: its text, and its number when it is one (a duration in the
    placeholder's unit: seconds for a certificate, milliseconds for a response time)."""

    text: str
    number: int | float | None = None


@dataclass(frozen=True, slots=True)
class AnyOf:
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Glob:
    pattern: str


@dataclass(frozen=True, slots=True)
class Pattern:
    written: str
    compiled: regex.Pattern[str] = field(compare=False)
    """Compiled once, at load."""


Right = Literal | AnyOf | Glob | Pattern


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    """As written in the file (its ends stripped)."""
    placeholder: str
    """``STATUS``, ``RESPONSE_TIME``, ``BODY``, ``CONNECTED``, ``DNS_RCODE``,
    ``CERTIFICATE_EXPIRATION``."""
    op: str
    right: Right
    path: tuple[str | int, ...] = ()
    """``[BODY].a[0]``: ``("a", 0)``."""
    length: bool = False
    """``len(…)`` of the value."""


def parse_condition(text: str, kind: CheckKind) -> Condition:
    """``text`` as a condition of a ``kind`` check; :class:`ConditionError` says what is wrong."""
    if not isinstance(text, str):
        raise ConditionError('a condition is text, e.g. "[STATUS] == 200"')
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionError(
            f"a condition is at most {MAX_CONDITION_CHARS} characters; this one has {len(text)}"
        )
    written = text.strip()
    if not written:
        raise ConditionError("a condition is empty; write LEFT OP RIGHT, e.g. [STATUS] == 200")
    if not written.isprintable():
        raise ConditionError("a condition is one line of printable characters (no tabs)")
    at, op = _operator(written)
    placeholder, path, length = _left(written[:at].strip(), kind)
    right = _right(written[at + len(op) :].strip(), op, placeholder, length)
    return Condition(written, placeholder, op, right, path, length)


def _operator(text: str) -> tuple[int, str]:
    """Where the operator is and which: the first of ``=!<>`` (a left side has none)."""
    found = re.search(r"[=!<>]", text)
    if found is None:
        raise ConditionError(
            "no operator; write LEFT OP RIGHT with OP one of == != < <= > >=, e.g. [STATUS] == 200"
        )
    at = found.start()
    if text[at : at + 2] in OPERATORS:
        return at, text[at : at + 2]
    if text[at] in "<>":
        return at, text[at]
    raise ConditionError(
        f"{text[at]!r} is not an operator; use one of == != < <= > >= (to compare, == not =)"
    )


def _left(left: str, kind: CheckKind) -> tuple[str, tuple[str | int, ...], bool]:
    names = ", ".join(f"[{name}]" for name in PLACEHOLDERS[kind])
    check = f"{_ARTICLE.get(kind, 'a')} {kind} check"
    inner, length = left, False
    if left[:4].lower() == "len(":
        if not left.endswith(")"):
            raise ConditionError(f"{_shown(left)}: len( has no closing ); e.g. len([BODY].items)")
        inner, length = left[4:-1].strip(), True
    found = _PLACEHOLDER.fullmatch(inner)
    if found is None:
        raise ConditionError(
            f"the left side {_shown(left)!r} is not a placeholder; use one of {names}"
        )
    name = found[1].strip().upper()
    if name not in PLACEHOLDERS[kind]:
        raise ConditionError(
            f"[{_shown(found[1])}] is not a placeholder of {check}; use one of {names}"
        )
    path = _path(found[2], left)
    if path and name != "BODY":
        raise ConditionError(
            f"{_shown(left)}: [{name}] has no fields; a JSON path such as [BODY].status is "
            "only for [BODY]"
        )
    if path and kind is not CheckKind.HTTP:
        raise ConditionError(
            f"{_shown(left)}: a JSON path is only for an http check's body; {check}'s [BODY] "
            "is compared whole (with pat(), re() or len([BODY]))"
        )
    if length and name != "BODY":
        raise ConditionError(
            f"{_shown(left)}: len() takes [BODY] or a path into it, e.g. len([BODY].items)"
        )
    return name, path, length


def _path(rest: str, left: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    at = 0
    while at < len(rest):
        found = _STEP.match(rest, at)
        if found is None:
            raise ConditionError(
                f"{_shown(left)}: a JSON path is .key and [N] steps, e.g. [BODY].data[0].id"
            )
        steps.append(found[1] if found[1] is not None else int(found[2]))
        at = found.end()
    if len(steps) > MAX_PATH_STEPS:
        raise ConditionError(f"{_shown(left)}: a JSON path has at most {MAX_PATH_STEPS} steps")
    return tuple(steps)


def _right(text: str, op: str, name: str, length: bool) -> Right:
    left = f"len([{name}])" if length else f"[{name}]"
    if not text:
        raise ConditionError(f"nothing after {op}; write the value to compare {left} with")
    function = _FUNCTION.match(text)
    if function is not None and op not in _EQUALITY:
        raise ConditionError(f"{function[1].lower()}() goes with == or != only, not {op}")
    if name == "CONNECTED":
        if op not in _EQUALITY or text.lower() not in ("true", "false"):
            raise ConditionError(
                "[CONNECTED] is true or false, compared with == or !=, e.g. [CONNECTED] == true"
            )
        return Literal(text.lower())
    if name == "DNS_RCODE":
        return _rcodes(text, op, function)
    if name in ("RESPONSE_TIME", "CERTIFICATE_EXPIRATION"):
        return _time(text, name, function)
    right = _function(text, function) if function is not None else _literal(text)
    if name == "STATUS" or length:
        values = right.values if isinstance(right, AnyOf) else (right,)
        if any(isinstance(v, Literal) and v.number is None for v in values):
            raise ConditionError(
                f"{left} is compared with a number, e.g. {left} "
                f"{'== 200' if name == 'STATUS' else '> 0'}; got {_shown(text)}"
            )
    return right


def _rcodes(text: str, op: str, function: re.Match[str] | None) -> Right:
    example = "e.g. [DNS_RCODE] == NOERROR or [DNS_RCODE] == any(NOERROR, NXDOMAIN)"
    if op not in _EQUALITY:
        raise ConditionError(f"[DNS_RCODE] is compared with == or !=, {example}")
    if function is not None and function[1].lower() != "any":
        raise ConditionError(f"[DNS_RCODE] takes a response code or any() of them, {example}")
    right = _function(text, function) if function is not None else _literal(text)
    values = right.values if isinstance(right, AnyOf) else (right,)
    codes: list[Literal] = []
    for value in values:
        code = value.text.strip().upper() if isinstance(value, Literal) else ""
        if code not in RCODES:
            raise ConditionError(
                f"{_shown(text)} is not a DNS response code; use one of {', '.join(RCODES[:6])}…"
            )
        codes.append(Literal(code))
    return AnyOf(tuple(codes)) if isinstance(right, AnyOf) else codes[0]


def _time(text: str, name: str, function: re.Match[str] | None) -> Literal:
    duration = _DURATION.fullmatch(text)
    if name == "CERTIFICATE_EXPIRATION":
        if function is not None or duration is None:
            raise ConditionError(
                "[CERTIFICATE_EXPIRATION] is compared with a duration (a number and one of ms, "
                f"s, m, h, d), e.g. [CERTIFICATE_EXPIRATION] > 14d; got {_shown(text)}"
            )
        return Literal(text, float(duration[1]) * _UNITS[duration[2].lower()])
    amount = number(text) if _NUMBER.fullmatch(text) else None
    if function is None and duration is not None:
        amount = float(duration[1]) * _UNITS[duration[2].lower()] * 1000.0
    if function is not None or amount is None:
        raise ConditionError(
            "[RESPONSE_TIME] is compared with milliseconds or a duration, e.g. "
            f"[RESPONSE_TIME] < 500 or [RESPONSE_TIME] < 2s; got {_shown(text)}"
        )
    return Literal(text, amount)


def _function(text: str, function: re.Match[str]) -> Right:
    kind = function[1].lower()
    if not text.endswith(")"):
        raise ConditionError(f"{kind}( has no closing ); e.g. {kind}({_EXAMPLES[kind]})")
    inner = text[function.end() : -1]
    if kind == "pat":
        return Glob(inner)
    if kind == "any":
        return AnyOf(_items(inner))
    if not inner:
        raise ConditionError(f"re() needs a pattern, e.g. re({_EXAMPLES['re']})")
    try:
        compiled = regex.compile(inner)
    except Exception as error:  # a third party's parser of arbitrary text: every failure is one
        reason = one_line(str(error), 80) or type(error).__name__
        raise ConditionError(
            f"re({_shown(inner)}) is not a valid regular expression: {reason}"
        ) from None
    return Pattern(inner, compiled)


_EXAMPLES = {"pat": "*alive*", "any": "200, 204", "re": r"^ok\b"}


def _items(inner: str) -> tuple[Literal, ...]:
    """``any()``'s comma-separated values; a quoted one may hold commas."""
    items: list[Literal] = []
    rest = inner.strip()
    if not rest:
        raise ConditionError(f"any() needs at least one value, e.g. any({_EXAMPLES['any']})")
    while True:
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                raise ConditionError("any() has a value with no closing quote")
            items.append(Literal(rest[1:end]))
            rest = rest[end + 1 :].lstrip()
            if rest and not rest.startswith(","):
                raise ConditionError('any(): a comma comes after a "quoted" value')
        else:
            head, comma, tail = rest.partition(",")
            if not head.strip():
                raise ConditionError("any() has an empty value; separate values with one comma")
            items.append(_literal(head.strip()))
            rest = comma + tail
        if not rest:
            return tuple(items)
        rest = rest[1:].lstrip()
        if not rest:
            raise ConditionError("any() ends with a comma; remove it or add a value")


def _literal(text: str) -> Literal:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise ConditionError(f"{_shown(text)}: a quoted value needs its closing quote")
        return Literal(text[1:-1])
    return Literal(text, number(text))


def number(text: str) -> int | float | None:
    """The number ``text`` writes, or None (long digit strings are text, not a costly int)."""
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _shown(text: str) -> str:
    return one_line(text, OBSERVED_CHARS)
