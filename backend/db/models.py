"""The QuestCity schema. Alembic migrations (``backend/db/migrations``) are the source of truth for
the database; these mappings must match them (a test compares the two)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # Unique where set: rows inserted by pods older than the key (during a rolling upgrade)
        # have '' until the backend fills them (migration 0003).
        Index(
            "ux_users_username_key",
            "username_key",
            unique=True,
            sqlite_where=text("username_key <> ''"),
            postgresql_where=text("username_key <> ''"),
        ),
        Index(
            "ix_users_username_key_missing",
            "created_at",
            "id",
            sqlite_where=text("username_key = ''"),
            postgresql_where=text("username_key = ''"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    """As the user typed it (trimmed): what the account shows."""
    username_key: Mapped[str] = mapped_column(String(255), server_default="")
    """``backend.auth.usernames.username_key`` of the name: what is unique and what a login looks
    up (``#<id>`` for an account whose name collided with an older one's before the key existed).
    The server default fills rows during migration 0002 and those inserted by older pods during
    a rolling upgrade, which ``repositories.fill_missing_username_keys`` then fills; the backend
    always sets it."""
    password_hash: Mapped[str] = mapped_column(String(255))
    avatar_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Quest(Base):
    __tablename__ = "quests"
    __table_args__ = (Index("ix_quests_city_created", "city", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    cover_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Completion(Base):
    __tablename__ = "completions"
    __table_args__ = (UniqueConstraint("quest_id", "user_id", name="uq_completion_quest_user"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    quest_id: Mapped[str] = mapped_column(ForeignKey("quests.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    points: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    """The response given to a request made with an ``Idempotency-Key``, stored in the same
    transaction as the write it answers, so a retried request gets the same answer."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
