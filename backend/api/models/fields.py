"""The field types of the API's bodies and query strings: each limit, pattern and message once.

A field is an ``Annotated`` type: pydantic enforces its constraints, the OpenAPI document shows
them (:mod:`backend.api.openapi`), and :class:`Says` holds the sentences a client reads when a
value is refused (:mod:`backend.api.validation` turns pydantic's errors into them).

Text is checked as sent (its length counts every character, surrounding whitespace included) and
then trimmed, so the document's ``maxLength`` is exactly the rule the server applies.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    StrictInt,
    StrictStr,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from backend.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_new_password
from backend.auth.usernames import check_new_username, name_characters
from backend.domain import (
    CITY_MAX,
    CURSOR_MAX,
    DESCRIPTION_MAX,
    ID_MAX,
    PAGE_MAX,
    POINTS_MAX,
    TITLE_MAX,
    USERNAME_MAX,
    storable,
)

DEFAULT_PAGE_SIZE = 20
NOT_STORABLE = "must be text without NUL characters or unpaired surrogates"


@dataclass(frozen=True, slots=True)
class Says:
    """What a client is told when a field is refused, by kind of fault (None: the default
    sentence). Rules checked in Python carry their own sentence."""

    missing: str = "is required"
    wrong_type: str = "must be a string"
    too_short: str | None = None
    too_long: str | None = None
    pattern: str | None = None


def char_class(codes: list[int], *, negate: bool = False) -> str:
    """A regex character class of ``codes``: ``\\uXXXX`` escapes in the BMP (ECMA-262 and Python
    read them alike), the characters themselves beyond it (no escape is read alike by both)."""
    ranges: list[tuple[int, int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))

    def spell(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    parts = "".join(spell(a) if a == b else f"{spell(a)}-{spell(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{parts}]"


SPACES: tuple[int, ...] = (
    *range(0x09, 0x0E),
    *range(0x1C, 0x21),
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
"""What ``str.strip`` trims (``str.isspace``; a test checks the list against all of Unicode, which
is too slow to scan at every start). Spelled out: regex engines disagree on ``\\s`` (ECMA-262
counts U+FEFF; Python counts U+001C-U+001F and U+0085, as ``str.strip`` does)."""


def _spaces() -> tuple[int, ...]:
    return SPACES


NO_NUL = "^[^\\u0000]*$"
"""Storable text as a pattern: no NUL. Unpaired surrogates cannot be spelled in a pattern every
engine reads alike; JSON from a conforming encoder never carries them, and the server refuses
them all the same."""

NOT_BLANK = f"^[^\\u0000]*{char_class([0, *_spaces()], negate=True)}[^\\u0000]*$"
"""Storable text with a character that trimming keeps: one pattern, not two in an ``allOf``
(generators merge those badly)."""

CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"
"""What :meth:`backend.domain.Cursor.encode` makes: unpadded URL-safe base64."""

PATH_SEGMENT = "^[^/]+$"
"""Starlette's ``{name}`` path segments: one or more characters other than "/"."""


def _printable_name() -> str:
    """Text that is printable (``str.isprintable``) and not empty once trimmed."""
    spaces = _spaces()
    printable = [c for c in range(sys.maxunicode + 1) if chr(c).isprintable()]
    edge = char_class(sorted(set(printable) - set(spaces)))
    space = char_class(list(spaces))
    return f"^{space}*{edge}(?:{char_class(printable)}*{edge})?{space}*$"


def _new_name() -> str:
    """A new name as far as a pattern can say it: trimmed, characters that stay letters, digits,
    marks or ``_-.`` once canonical, starting with a letter or digit. One script per name, marks
    only right after letters, and the length once canonical are said in words."""
    allowed, starts = name_characters()
    space = char_class(list(_spaces()))
    return f"^{space}*{char_class(starts)}{char_class(allowed)}*{space}*$"


@dataclass(frozen=True, slots=True)
class Pattern:
    """A pattern the document shows for a rule the field checks in Python, with the rule's own
    sentences: too large a class to compile at every start, so it is built when first shown."""

    build: Callable[[], str]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = _built(self.build)
        return schema


_PATTERNS: dict[Callable[[], str], str] = {}
_PATTERNS_LOCK = threading.Lock()


def _built(build: Callable[[], str]) -> str:
    # Under a lock, not functools.cache: documents of several apps may be built at once in worker
    # threads, and each would build the same second-long pattern too. Not built at import: that
    # would add a second to every start of every program that imports the models.
    with _PATTERNS_LOCK:
        if build not in _PATTERNS:
            _PATTERNS[build] = build()
        return _PATTERNS[build]


def _rule(check: Callable[[str], str | None]) -> AfterValidator:
    """A check in Python whose answer (a sentence, or None) is what the client reads."""

    def validate(value: str) -> str:
        problem = check(value)
        if problem is not None:
            raise PydanticCustomError("rule", problem)
        return value

    return AfterValidator(validate)


_STORABLE = _rule(lambda value: None if storable(value) else NOT_STORABLE)
_TRIMMED = AfterValidator(str.strip)


def _whole_float(value: object) -> object:
    # JSON has one number type: 5.0 is the whole number 5.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_NOT_EMPTY = Says(pattern="must not be empty")

Title = Annotated[
    StrictStr,
    Field(max_length=TITLE_MAX, pattern=NOT_BLANK, description="Trimmed; must not be blank."),
    _STORABLE,
    _TRIMMED,
    _NOT_EMPTY,
]
Description = Annotated[
    StrictStr,
    Field(max_length=DESCRIPTION_MAX, pattern=NO_NUL, description="Trimmed; may be empty."),
    _STORABLE,
    _TRIMMED,
]
City = Annotated[
    StrictStr,
    Field(max_length=CITY_MAX, pattern=NOT_BLANK, description="Trimmed; must not be blank."),
    _STORABLE,
    _TRIMMED,
    _NOT_EMPTY,
]
Points = Annotated[
    StrictInt,
    Field(ge=1, le=POINTS_MAX),
    BeforeValidator(_whole_float),
    Says(wrong_type="must be a whole number"),
]

_NON_EMPTY = "is required and must be a non-empty string"
_PRINTABLE = f"must be printable and at most {USERNAME_MAX} characters"


_NAME = (
    f"Printable text, at most {USERNAME_MAX} characters; trimmed. Compared in NFKC, case-folded "
    "form, with look-alike Cyrillic and Greek letters taken as the Latin ones: `alice`, `ALICE`, "
    "`ａlice` and an all-Cyrillic `аӏісе` are one name."
)


def _printable(name: str) -> str | None:
    trimmed = name.strip()
    if not trimmed:
        return _NON_EMPTY
    return None if trimmed.isprintable() else _PRINTABLE


Username = Annotated[
    StrictStr,
    Field(
        max_length=USERNAME_MAX,
        description=_NAME,
    ),
    Pattern(_printable_name),
    _STORABLE,
    _rule(_printable),
    _TRIMMED,
    Says(missing=_NON_EMPTY, wrong_type=_NON_EMPTY, too_long=_PRINTABLE),
]
NewUsername = Annotated[
    StrictStr,
    Field(
        max_length=USERNAME_MAX,
        description=f"{_NAME} A new name may hold only letters, "
        "digits, `_`, `-` and `.`, starts with a letter or a digit, and writes its letters in "
        f"one script; at most {USERNAME_MAX} characters in NFKC form too (422 otherwise).",
    ),
    Pattern(_new_name),
    _STORABLE,
    _rule(_printable),
    _TRIMMED,
    _rule(check_new_username),
    Says(missing=_NON_EMPTY, wrong_type=_NON_EMPTY, too_long=_PRINTABLE),
]
Password = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_PASSWORD_LENGTH, pattern=NO_NUL),
    _STORABLE,
    Says(
        missing=_NON_EMPTY,
        wrong_type=_NON_EMPTY,
        too_short=_NON_EMPTY,
        too_long=f"must be at most {MAX_PASSWORD_LENGTH} characters",
        pattern=NOT_STORABLE,
    ),
]
NewPassword = Annotated[
    StrictStr,
    Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        pattern=NO_NUL,
        description=f"At least {MIN_PASSWORD_LENGTH} characters (NIST SP 800-63B); no rules on "
        "which characters. Long passphrases are welcome.",
    ),
    _STORABLE,
    Says(
        missing=_NON_EMPTY,
        wrong_type=_NON_EMPTY,
        too_short=check_new_password("") or "",
        too_long=check_new_password("x" * (MAX_PASSWORD_LENGTH + 1)) or "",
        pattern=NOT_STORABLE,
    ),
]


def _query_int(raw: object) -> object:
    """A whole number in a query string: decimal digits (a sign and surrounding spaces allowed);
    absent or empty means the default."""
    if not isinstance(raw, str):
        return raw
    if raw == "":
        return DEFAULT_PAGE_SIZE
    digits = raw.strip().lstrip("+-")
    if digits.isdecimal() and len(digits) > 6:
        # A whole number, but not one worth converting: past 4,300 digits int() refuses it.
        return sys.maxsize
    try:
        return int(raw)
    except ValueError:
        raise PydanticCustomError("rule", "must be a whole number") from None


Limit = Annotated[
    StrictInt,
    Field(ge=1, le=PAGE_MAX, description=f"Page size, {DEFAULT_PAGE_SIZE} when absent or empty."),
    BeforeValidator(_query_int),
]
CityFilter = Annotated[
    StrictStr,
    Field(
        max_length=CITY_MAX,
        pattern=NO_NUL,
        description="Only quests in this city (exact match after trimming); empty for every city.",
    ),
    _STORABLE,
    _TRIMMED,
]
_NOT_A_CURSOR = "is not a cursor this API returned"
CursorText = Annotated[
    StrictStr,
    Field(
        max_length=CURSOR_MAX,
        pattern=CURSOR_PATTERN,
        description="Opaque: a `next_cursor` this API returned (anything else is refused with "
        "422); empty for the first page.",
    ),
    Says(too_long=_NOT_A_CURSOR, pattern=_NOT_A_CURSOR),
]
PathId = Annotated[str, Field(max_length=ID_MAX, pattern=PATH_SEGMENT)]
"""An id in a path: longer than any id, or not storable text, it names nothing (404)."""
PathName = Annotated[str, Field(pattern=PATH_SEGMENT)]
