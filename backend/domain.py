"""QuestCity's domain values, free of HTTP and SQL: quests, the paging cursor, the limits.

How requests are checked against the limits is the API's (:mod:`backend.api.models`)."""

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
