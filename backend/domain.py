"""QuestCity's domain values and input rules, free of HTTP and SQL."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

TITLE_MAX = 200
DESCRIPTION_MAX = 5_000
CITY_MAX = 100
POINTS_MAX = 10_000
USERNAME_MAX = 64
PAGE_MAX = 100
ID_MAX = 36
"""Ids are UUIDs in text (36 characters); nothing longer names anything."""
CURSOR_MAX = 200


class InvalidInput(ValueError):
    """A field has a value the API cannot accept; ``errors`` maps field → what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class QuestView:
    id: str
    title: str
    description: str
    city: str
    points: int
    owner_id: str
    has_cover: bool
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "city": self.city,
            "points": self.points,
            "owner_id": self.owner_id,
            "has_cover": self.has_cover,
            "cover_url": f"/api/v1/quests/{self.id}/cover" if self.has_cover else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class QuestInput:
    title: str
    description: str
    city: str
    points: int


@dataclass(frozen=True, slots=True)
class QuestPatch:
    title: str | None = None
    description: str | None = None
    city: str | None = None
    points: int | None = None


def storable(value: str) -> bool:
    """Text every database takes: UTF-8-encodable (no lone surrogates) and free of NUL."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NOT_STORABLE = "must be text without NUL characters or unpaired surrogates"


def _text(
    errors: dict[str, str],
    body: Mapping[str, object],
    name: str,
    limit: int,
    *,
    required: bool,
    allow_empty: bool = False,
) -> str | None:
    if name not in body:
        if required:
            errors[name] = "is required"
        return None
    value = body[name]
    if not isinstance(value, str):
        errors[name] = "must be a string"
        return None
    value = value.strip()
    if not storable(value):
        errors[name] = _NOT_STORABLE
    elif not value and not allow_empty:
        errors[name] = "must not be empty"
    elif len(value) > limit:
        errors[name] = f"must be at most {limit} characters"
    return value


def _points(errors: dict[str, str], body: Mapping[str, object], *, required: bool) -> int | None:
    if "points" not in body:
        if required:
            errors["points"] = "is required"
        return None
    value = body["points"]
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 5.0 is the whole number 5
    if isinstance(value, bool) or not isinstance(value, int):
        errors["points"] = "must be a whole number"
        return None
    if not 1 <= value <= POINTS_MAX:
        errors["points"] = f"must be between 1 and {POINTS_MAX}"
    return value


def _known_fields(errors: dict[str, str], body: Mapping[str, object], allowed: set[str]) -> None:
    for name in body:
        if name not in allowed:
            errors[name] = "is not a field of a quest"


_QUEST_FIELDS = {"title", "description", "city", "points"}


def parse_quest(body: Mapping[str, object]) -> QuestInput:
    errors: dict[str, str] = {}
    _known_fields(errors, body, _QUEST_FIELDS)
    title = _text(errors, body, "title", TITLE_MAX, required=True)
    description = _text(
        errors, body, "description", DESCRIPTION_MAX, required=False, allow_empty=True
    )
    city = _text(errors, body, "city", CITY_MAX, required=True)
    points = _points(errors, body, required=True)
    if errors:
        raise InvalidInput(errors)
    assert title is not None and city is not None and points is not None
    return QuestInput(title, description or "", city, points)


def parse_quest_patch(body: Mapping[str, object]) -> QuestPatch:
    errors: dict[str, str] = {}
    _known_fields(errors, body, _QUEST_FIELDS)
    patch = QuestPatch(
        title=_text(errors, body, "title", TITLE_MAX, required=False),
        description=_text(
            errors, body, "description", DESCRIPTION_MAX, required=False, allow_empty=True
        ),
        city=_text(errors, body, "city", CITY_MAX, required=False),
        points=_points(errors, body, required=False),
    )
    if not body:
        errors["body"] = "name at least one of title, description, city, points"
    if errors:
        raise InvalidInput(errors)
    return patch


def parse_credentials(body: Mapping[str, object]) -> tuple[str, str]:
    errors: dict[str, str] = {}
    username = body.get("username")
    password = body.get("password")
    if not isinstance(username, str) or not username.strip():
        errors["username"] = "is required and must be a non-empty string"
    elif not storable(username):
        errors["username"] = _NOT_STORABLE
    elif len(username.strip()) > USERNAME_MAX or not username.strip().isprintable():
        errors["username"] = f"must be printable and at most {USERNAME_MAX} characters"
    if not isinstance(password, str) or not password:
        errors["password"] = "is required and must be a non-empty string"
    elif not storable(password):
        errors["password"] = _NOT_STORABLE
    elif len(password) > 1024:
        errors["password"] = "must be at most 1024 characters"
    if errors:
        raise InvalidInput(errors)
    assert isinstance(username, str) and isinstance(password, str)
    return username.strip(), password


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset pagination position: the last item's (created_at, id)."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The position a token from :meth:`encode` names; :class:`InvalidInput` for anything
        else, including what no database could compare with: an id that is not storable text, a
        time that does not fit PostgreSQL's or Python's range once taken to UTC."""
        try:
            if len(token) > CURSOR_MAX:
                raise ValueError
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            stamp, _, quest_id = raw.partition("|")
            if not quest_id or len(quest_id) > ID_MAX or not storable(quest_id):
                raise ValueError
            return cls(_utc(datetime.fromisoformat(stamp)), quest_id)
        except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput({"cursor": "is not a cursor this API returned"}) from None


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one was written in UTC, as SQLite hands them back); raises
    OverflowError when that leaves Python's years 1 to 9999."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_city_filter(raw: str | None) -> str | None:
    """The ``city`` query parameter: None for no filter; text a database can compare, or
    :class:`InvalidInput`."""
    city = (raw or "").strip()
    if not city:
        return None
    if not storable(city):
        raise InvalidInput({"city": _NOT_STORABLE})
    if len(city) > CITY_MAX:
        raise InvalidInput({"city": f"must be at most {CITY_MAX} characters"})
    return city


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 20
    digits = raw.strip().lstrip("+-")
    if digits.isdecimal() and len(digits) > 6:
        # A whole number, but not one worth converting: past 4,300 digits int() refuses it.
        raise InvalidInput({"limit": f"must be between 1 and {PAGE_MAX}"})
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput({"limit": "must be a whole number"}) from None
    if not 1 <= value <= PAGE_MAX:
        raise InvalidInput({"limit": f"must be between 1 and {PAGE_MAX}"})
    return value
