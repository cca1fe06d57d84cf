"""Units of work on the QuestCity schema. Each takes the session first and returns plain values;
``Database`` runs them (one transaction each) under the resilience policies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from backend.db.errors import Conflict
from backend.db.models import Completion, IdempotencyRecord, Quest, User
from backend.domain import Cursor, QuestInput, QuestPatch, QuestView


def now_utc() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    username: str
    password_hash: str
    avatar_key: str | None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The answer recorded for an idempotency key."""

    status: int
    body: dict[str, object]
    request_hash: str


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _view(quest: Quest) -> QuestView:
    return QuestView(
        id=quest.id,
        title=quest.title,
        description=quest.description,
        city=quest.city,
        points=quest.points,
        owner_id=quest.owner_id,
        has_cover=quest.cover_key is not None,
        created_at=_aware(quest.created_at),
        updated_at=_aware(quest.updated_at),
    )


def _user(user: User) -> UserRecord:
    return UserRecord(user.id, user.username, user.password_hash, user.avatar_key)


# -- users -------------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession, username: str, username_key: str, password_hash: str
) -> UserRecord:
    """A new account; :class:`Conflict` when the name or its key is taken."""
    user = User(
        id=new_id(),
        username=username,
        username_key=username_key,
        password_hash=password_hash,
        avatar_key=None,
        created_at=now_utc(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"The username {username!r} is taken.") from None
    return _user(user)


async def find_user_for_login(
    session: AsyncSession, username: str, username_key: str
) -> UserRecord | None:
    """The account ``username`` logs in to: the one registered with exactly that name (an
    account older than username keys may share its key with another), else the one whose key is
    ``username_key``."""
    users = list(
        await session.scalars(
            select(User)
            .where(or_(User.username == username, User.username_key == username_key))
            .limit(2)
        )
    )
    exact = [user for user in users if user.username == username]
    chosen = exact[0] if exact else next(iter(users), None)
    return _user(chosen) if chosen is not None else None


USERNAME_KEY_LENGTH = 255
"""The column's length; a longer key (NFKC can lengthen a name) is stored as ``#<id>``."""


async def fill_missing_username_keys(
    session: AsyncSession, key_of: Callable[[str], str], limit: int = 1000
) -> int:
    """Give up to ``limit`` accounts that have no username key their key; how many were filled.

    Pods older than the key (during a rolling upgrade past migration 0002) insert accounts with
    ``''``. Each gets ``key_of`` its name (:func:`backend.auth.usernames.username_key`, passed
    in by the caller: the username rule is auth's, which this layer does not import), oldest
    first, or, when an account already holds that key (or the key is too long), ``#<its id>``, as
    migration 0002 did: it keeps logging in with its name exactly as registered. On PostgreSQL
    concurrent fills take turns (a transaction-scoped advisory lock), so two of them never pick
    the same key for two rows.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_FILL_LOCK)))
    rows = (
        await session.execute(
            select(User.id, User.username)
            .where(User.username_key == "")
            .order_by(User.created_at, User.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return 0
    wanted = {user_id: key_of(name) for user_id, name in rows}
    taken = set(
        await session.scalars(
            select(User.username_key).where(User.username_key.in_(set(wanted.values())))
        )
    )
    for user_id, key in wanted.items():
        if not key or key in taken or len(key) > USERNAME_KEY_LENGTH or key.startswith("#"):
            key = f"#{user_id}"
        taken.add(key)
        await session.execute(
            update(User).where(User.id == user_id, User.username_key == "").values(username_key=key)
        )
    return len(rows)


_FILL_LOCK = 0x71C17E5  # any constant: one advisory lock for fill_missing_username_keys


async def find_user(session: AsyncSession, user_id: str) -> UserRecord | None:
    user = await session.get(User, user_id)
    return _user(user) if user is not None else None


async def set_avatar_key(session: AsyncSession, user_id: str, key: str) -> str | None:
    """Point the user at a new avatar; returns the key it replaced (to delete from storage), or
    None. Concurrent calls each get a different replaced key (see :func:`_swap_key`)."""
    return await _swap_key(session, User, user_id, User.avatar_key, key)


# -- quests ------------------------------------------------------------------------------------


async def list_quests(
    session: AsyncSession, city: str | None, limit: int, after: Cursor | None
) -> tuple[list[QuestView], Cursor | None]:
    query = select(Quest).order_by(Quest.created_at.desc(), Quest.id.desc()).limit(limit + 1)
    if city:
        query = query.where(Quest.city == city)
    if after is not None:
        query = query.where(
            or_(
                Quest.created_at < after.created_at,
                and_(Quest.created_at == after.created_at, Quest.id < after.id),
            )
        )
    rows = list(await session.scalars(query))
    page = [_view(q) for q in rows[:limit]]
    more = len(rows) > limit
    return page, (Cursor(rows[limit - 1].created_at, rows[limit - 1].id) if more else None)


async def get_quest(session: AsyncSession, quest_id: str) -> QuestView | None:
    quest = await session.get(Quest, quest_id)
    return _view(quest) if quest is not None else None


async def get_cover_key(session: AsyncSession, quest_id: str) -> tuple[bool, str | None]:
    """(quest exists, its cover key)."""
    row = (await session.execute(select(Quest.cover_key).where(Quest.id == quest_id))).first()
    return (row is not None, row[0] if row is not None else None)


async def get_avatar_key(session: AsyncSession, user_id: str) -> tuple[bool, str | None]:
    row = (await session.execute(select(User.avatar_key).where(User.id == user_id))).first()
    return (row is not None, row[0] if row is not None else None)


async def create_quest(session: AsyncSession, owner_id: str, data: QuestInput) -> QuestView:
    stamp = now_utc()
    quest = Quest(
        id=new_id(),
        title=data.title,
        description=data.description,
        city=data.city,
        points=data.points,
        owner_id=owner_id,
        cover_key=None,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(quest)
    await session.flush()
    return _view(quest)


async def update_quest(session: AsyncSession, quest_id: str, patch: QuestPatch) -> QuestView | None:
    quest = await session.get(Quest, quest_id, with_for_update=True)
    if quest is None:
        return None
    for name in ("title", "description", "city", "points"):
        value = getattr(patch, name)
        if value is not None:
            setattr(quest, name, value)
    quest.updated_at = now_utc()
    await session.flush()
    return _view(quest)


async def delete_quest(session: AsyncSession, quest_id: str) -> str | None:
    """Delete; returns the cover key to remove from storage, or raises LookupError if absent.

    Deletes the row only while its cover is still the one read (else reads again), so a cover
    set concurrently is either returned here or refused to its uploader (LookupError), who then
    deletes its object: never left behind."""
    while True:
        found = (await session.execute(select(Quest.cover_key).where(Quest.id == quest_id))).first()
        if found is None:
            raise LookupError(quest_id)
        cover: str | None = found[0]
        still = Quest.cover_key.is_(None) if cover is None else Quest.cover_key == cover
        await session.execute(delete(Completion).where(Completion.quest_id == quest_id))
        deleted = await session.execute(
            delete(Quest)
            .where(Quest.id == quest_id, still)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(deleted) == 1:
            return cover


async def set_cover_key(session: AsyncSession, quest_id: str, key: str) -> str | None:
    """Point the quest at a new cover; returns the key it replaced, as :func:`set_avatar_key`."""
    return await _swap_key(session, Quest, quest_id, Quest.cover_key, key, updated_at=now_utc())


async def _swap_key(
    session: AsyncSession,
    model: type[User] | type[Quest],
    row_id: str,
    column: InstrumentedAttribute[str | None],
    key: str,
    **also: object,
) -> str | None:
    """Compare-and-swap the image key of one row: read it, then update only if it still holds
    what was read, else read again. Each replaced key is returned to exactly one caller, who
    deletes its object, so concurrent uploads leave no orphan; ``SELECT ... FOR UPDATE`` would
    not do on SQLite, where it is a no-op. Raises LookupError when the row is gone."""
    while True:
        found = (await session.execute(select(column).where(model.id == row_id))).first()
        if found is None:
            raise LookupError(row_id)
        old: str | None = found[0]
        still = column.is_(None) if old is None else column == old
        swapped = await session.execute(
            update(model)
            .where(model.id == row_id, still)
            .values({column.key: key, **also})
            .execution_options(synchronize_session=False)
        )
        if _rowcount(swapped) == 1:
            return old


def _rowcount(result: object) -> int:
    count: int = getattr(result, "rowcount")  # noqa: B009 - CursorResult's, not on Result
    return count


async def quest_owner(session: AsyncSession, quest_id: str) -> str | None:
    return await session.scalar(select(Quest.owner_id).where(Quest.id == quest_id))


async def complete_quest(session: AsyncSession, quest_id: str, user_id: str) -> dict[str, object]:
    """Record ``user_id``'s completion of the quest; LookupError when there is no such quest
    (also when it is deleted between the read and the insert), :class:`Conflict` when the user
    completed it already."""
    quest = await session.get(Quest, quest_id)
    if quest is None:
        raise LookupError(quest_id)
    completion = Completion(
        id=new_id(), quest_id=quest_id, user_id=user_id, points=quest.points, created_at=now_utc()
    )
    session.add(completion)
    try:
        await session.flush()
    except IntegrityError as error:
        kind, name = _refused_constraint(error)
        if kind == "unique" and name in (None, "uq_completion_quest_user"):
            raise Conflict("You have completed this quest already.") from None
        if kind == "foreign key" and name in (None, "completions_quest_id_fkey"):
            raise LookupError(quest_id) from None  # deleted since it was read
        raise
    return {
        "id": completion.id,
        "quest_id": quest_id,
        "user_id": user_id,
        "points": completion.points,
        "completed_at": completion.created_at.isoformat(),
    }


# The constraint an IntegrityError reports, told by the driver's code rather than its message:
# PostgreSQL's SQLSTATE (asyncpg names the constraint too: `completions_quest_id_fkey` is the
# name PostgreSQL gives migration 0001's unnamed foreign key) and SQLite's extended result code.
# SQLite names no constraint; `completions` has one UNIQUE besides its primary key (whose code
# differs), so there 2067 is the completion pair. SQLite enforces foreign keys only under
# `PRAGMA foreign_keys=ON`, which `backend.db.engine` sets on every connection.
_SQLSTATES = {"23505": "unique", "23503": "foreign key"}
_SQLITE_CODES = {2067: "unique", 787: "foreign key", 1555: "primary key"}  # SQLITE_CONSTRAINT_*


def _refused_constraint(error: IntegrityError) -> tuple[str, str | None]:
    """(``"unique"``, ``"foreign key"``, ``"primary key"`` or ``"other"``; the constraint's name
    when the driver gives it) for what refused the write. On PostgreSQL a primary key is a
    ``"unique"`` named ``<table>_pkey``.

    A completion's other foreign key, its user, holds while the user's token does: the backend
    deletes no account. On SQLite an account deleted by hand would make its next completion a
    404, as the two foreign keys are not told apart there."""
    causes: list[BaseException] = []
    current: object = error
    while isinstance(current, BaseException) and current not in causes:
        causes.append(current)
        current = getattr(current, "orig", None) or current.__cause__
    name = next(
        (n for c in causes if isinstance(n := getattr(c, "constraint_name", None), str)), None
    )
    for cause in causes:
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("23"):
            return _SQLSTATES.get(sqlstate, "other"), name
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(code, int):
            return _SQLITE_CODES.get(code, "other"), None
    return "other", None


# -- idempotency -------------------------------------------------------------------------------


async def find_response(session: AsyncSession, user_id: str, key: str) -> StoredResponse | None:
    record = await session.get(IdempotencyRecord, (user_id, key))
    if record is None:
        return None
    return StoredResponse(record.status, json.loads(record.body), record.request_hash)


async def store_response(
    session: AsyncSession,
    user_id: str,
    key: str,
    request_hash: str,
    status: int,
    body: dict[str, object],
) -> None:
    session.add(
        IdempotencyRecord(
            user_id=user_id,
            key=key,
            request_hash=request_hash,
            status=status,
            body=json.dumps(body).encode(),
            created_at=now_utc(),
        )
    )
    await session.flush()
