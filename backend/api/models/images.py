"""Uploads: where the stored image is now served."""

from __future__ import annotations

from backend.api.models.base import Answer


class CoverUploaded(Answer):
    quest_id: str
    cover_url: str


class AvatarUploaded(Answer):
    user_id: str
    avatar_url: str
