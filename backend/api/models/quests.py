"""Quests: what a client sends to create or change one, and what it is shown."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import AwareDatetime, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from backend.api.models.base import Answer, Request, absent
from backend.api.models.fields import (
    DEFAULT_PAGE_SIZE,
    City,
    CityFilter,
    CursorText,
    Description,
    Limit,
    Points,
    Title,
)
from backend.domain import PAGE_MAX, POINTS_MAX, QuestInput, QuestView
from backend.domain import QuestPatch as QuestChanges

_QUEST_FIELD = "is not a field of a quest"


class NewQuest(Request):
    """A new quest. `description` defaults to an empty string."""

    unknown_field: ClassVar[str] = _QUEST_FIELD
    title: Title
    description: Description = ""
    city: City
    points: Points

    def domain(self) -> QuestInput:
        return QuestInput(self.title, self.description, self.city, self.points)


class QuestPatch(Request):
    """The fields to change (at least one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})
    unknown_field: ClassVar[str] = _QUEST_FIELD
    title: Title = absent()
    description: Description = absent()
    city: City = absent()
    points: Points = absent()

    @model_validator(mode="after")
    def _names_one(self) -> QuestPatch:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "empty", "name at least one of title, description, city, points"
            )
        return self

    def domain(self) -> QuestChanges:
        return QuestChanges(**self.model_dump(exclude_unset=True))


class QuestQuery(Request):
    """``GET /api/v1/quests``'s query string."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # other parameters are not ours
    city: CityFilter = ""
    limit: Limit = DEFAULT_PAGE_SIZE
    cursor: CursorText = ""


class Quest(Answer):
    id: str
    title: str
    description: str
    city: str
    points: int
    owner_id: str = Field(description="The id of the user who created it.")
    has_cover: bool
    cover_url: str | None = Field(description="Where the cover image is served, if it has one.")
    created_at: AwareDatetime = Field(description="When the quest was created.")
    updated_at: AwareDatetime = Field(description="When the quest last changed.")


def quest_json(quest: QuestView) -> dict[str, Any]:
    """A quest as :class:`Quest` shows it (a plain dict: pages of them are kept as answered)."""
    return {
        "id": quest.id,
        "title": quest.title,
        "description": quest.description,
        "city": quest.city,
        "points": quest.points,
        "owner_id": quest.owner_id,
        "has_cover": quest.has_cover,
        "cover_url": f"/api/v1/quests/{quest.id}/cover" if quest.has_cover else None,
        "created_at": quest.created_at.isoformat(),
        "updated_at": quest.updated_at.isoformat(),
    }


class QuestPage(Answer):
    """Newest quests first."""

    items: list[Quest] = Field(max_length=PAGE_MAX)
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Completion(Answer):
    id: str
    quest_id: str
    user_id: str
    points: int = Field(ge=1, le=POINTS_MAX)
    completed_at: AwareDatetime = Field(description="When the quest was completed.")
