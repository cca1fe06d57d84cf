"""Quests: list, read, create, update, delete, complete (ARCHITECTURE §7).

Reads answer from the last good copy, marked ``X-QuestCity-Degraded: database``, when the database
cannot answer. Creates and completions carrying an ``Idempotency-Key`` are recorded with their
answer in one transaction, so a client retrying after a network fault gets the same answer and
never a duplicate; only those writes are retried on a connection error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backend.api.common import (
    claims_of,
    degraded_json,
    idempotency_key,
    invalid,
    json_object,
    player_claims,
    request_fingerprint,
)
from backend.api.errors import ApiError
from backend.api.models.errors import Error
from backend.api.models.quests import (
    Completion,
    NewQuest,
    Quest,
    QuestPage,
    QuestPatch,
    QuestQuery,
    quest_json,
)
from backend.api.operations import Operation, Reply, errors, operation
from backend.api.routing import path_id, resource
from backend.api.validation import validated
from backend.auth import Claims, Role
from backend.db import repositories as repo
from backend.db.errors import Conflict
from backend.degradation import DEPENDENCY_FAILURES, unavailable
from backend.domain import Cursor, InvalidInput
from backend.state import AppState, app_state


def _not_found(quest_id: str) -> ApiError:
    return ApiError(404, "not_found", f"There is no quest {quest_id!r}.")


_QUEST_ID = {"id": "The quest's id."}
_PLAYER_ONLY = "The token must be a player's (staff tokens have no account): 403 otherwise."
_NEXT = (
    "getQuest",
    "updateQuest",
    "deleteQuest",
    "completeQuest",
    "putQuestCover",
    "getQuestCover",
)
_REPEATED = "(or, for a repeated `Idempotency-Key`, the first answer again)"


@operation(
    Operation(
        "listQuests",
        "List quests, newest first",
        "quests",
        {
            200: Reply(
                "A page of quests (a kept copy while the database is down).",
                QuestPage,
                headers=("Degraded",),
            ),
            **errors(422, 503),
        },
        query=QuestQuery,
    )
)
async def list_quests(request: Request) -> Response:
    state = app_state(request)
    try:
        query = validated(QuestQuery, request.query_params)
        city = query.city or None
        cursor_text = query.cursor or None
        after = Cursor.decode(cursor_text) if cursor_text else None
    except InvalidInput as error:
        raise invalid(error) from None
    limit = query.limit
    key = ("quests", city, limit, cursor_text)
    try:
        items, next_cursor = await state.database.read(repo.list_quests, city, limit, after)
    except DEPENDENCY_FAILURES as error:
        return _stale_or_unavailable(state, key, error)
    payload = {
        "items": [quest_json(q) for q in items],
        "next_cursor": next_cursor.encode() if next_cursor else None,
    }
    state.cache.put(key, payload)
    return JSONResponse(payload)


@operation(
    Operation(
        "getQuest",
        "Read a quest",
        "quests",
        {
            200: Reply(
                "The quest (a kept copy while the database is down).", Quest, headers=("Degraded",)
            ),
            **errors(404, 503),
        },
        path=_QUEST_ID,
    )
)
async def get_quest(request: Request) -> Response:
    state = app_state(request)
    quest_id = path_id(request)
    key = ("quest", quest_id)
    try:
        quest = await state.database.read(repo.get_quest, quest_id)
    except DEPENDENCY_FAILURES as error:
        return _stale_or_unavailable(state, key, error)
    if quest is None:
        state.cache.drop(key)
        raise _not_found(quest_id)
    payload = quest_json(quest)
    state.cache.put(key, payload)
    return JSONResponse(payload)


def _stale_or_unavailable(state: AppState, key: Hashable, error: BaseException) -> Response:
    cached = state.cache.get(key)
    if cached is None:
        raise unavailable("database", error) from None
    return degraded_json(cached.payload, "database")


@operation(
    Operation(
        "createQuest",
        "Create a quest",
        "quests",
        {
            201: Reply(
                f"The quest was created {_REPEATED}.",
                Quest,
                headers=("IdempotencyKey",),
                links=_NEXT,
            ),
            **errors(400, 401, 403, 413, 422, 503),
        },
        description=_PLAYER_ONLY,
        body=NewQuest,
        body_description="The new quest.",
        headers=("IdempotencyKey",),
        security="bearer",
    )
)
async def create_quest(request: Request) -> Response:
    state = app_state(request)
    claims = player_claims(request)
    body = await json_object(request)
    try:
        data = validated(NewQuest, body).domain()
    except InvalidInput as error:
        raise invalid(error) from None

    async def create(session: AsyncSession) -> tuple[int, dict[str, object]]:
        quest = await repo.create_quest(session, claims.sub, data)
        return 201, quest_json(quest)

    return await _write(request, state, claims, body, create)


@operation(
    Operation(
        "completeQuest",
        "Complete a quest",
        "quests",
        {
            201: Reply(
                f"The completion was recorded {_REPEATED}.", Completion, headers=("IdempotencyKey",)
            ),
            409: Reply("You have completed this quest already (`conflict`).", Error),
            **errors(400, 401, 403, 404, 422, 503),
        },
        description=f"{_PLAYER_ONLY} The request has no body.",
        path=_QUEST_ID,
        headers=("IdempotencyKey",),
        security="bearer",
    )
)
async def complete_quest(request: Request) -> Response:
    state = app_state(request)
    claims = player_claims(request)
    quest_id = path_id(request)

    async def complete(session: AsyncSession) -> tuple[int, dict[str, object]]:
        return 201, await repo.complete_quest(session, quest_id, claims.sub)

    try:
        return await _write(request, state, claims, {"quest": quest_id}, complete)
    except LookupError:
        raise _not_found(quest_id) from None


Work = Callable[[AsyncSession], Awaitable[tuple[int, dict[str, object]]]]


async def _write(
    request: Request, state: AppState, claims: Claims, body: dict[str, object], work: Work
) -> Response:
    """Run a create-like write: idempotently (and retried) with a key, once without."""
    key = idempotency_key(request)
    try:
        if key is None:
            status, payload = await state.database.write(work)
            return JSONResponse(payload, status_code=status)
        fingerprint = request_fingerprint(request, body)
        try:
            stored = await state.database.write_idempotent(
                _idempotent, claims.sub, key, fingerprint, work
            )
        except Conflict:
            # A concurrent request with the same key won the race; answer what it answered.
            found = await state.database.read(repo.find_response, claims.sub, key)
            if found is None:
                raise
            stored = found
    except Conflict as error:
        raise ApiError(409, "conflict", str(error)) from None
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    if stored.request_hash != fingerprint:
        raise ApiError(
            422, "idempotency_key_reused", "This Idempotency-Key was used for a different request."
        )
    return JSONResponse(stored.body, status_code=stored.status, headers={"Idempotency-Key": key})


async def _idempotent(
    session: AsyncSession, user_id: str, key: str, fingerprint: str, work: Work
) -> repo.StoredResponse:
    found = await repo.find_response(session, user_id, key)
    if found is not None:
        return found
    status, payload = await work(session)
    await repo.store_response(session, user_id, key, fingerprint, status, payload)
    return repo.StoredResponse(status, payload, fingerprint)


async def _authorise_owner(state: AppState, claims: Claims, quest_id: str) -> None:
    try:
        owner = await state.database.read(repo.quest_owner, quest_id)
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    if owner is None:
        raise _not_found(quest_id)
    if owner != claims.sub and claims.role is not Role.ADMIN:
        raise ApiError(403, "forbidden", "Only the quest's author or an admin may change it.")


@operation(
    Operation(
        "updateQuest",
        "Change a quest",
        "quests",
        {
            200: Reply("The updated quest.", Quest),
            **errors(400, 401, 403, 404, 413, 422, 503),
        },
        description="Only the quest's author or an admin may change it (403 otherwise).",
        body=QuestPatch,
        body_description="The fields to change.",
        path=_QUEST_ID,
        security="bearer",
    )
)
async def update_quest(request: Request) -> Response:
    state = app_state(request)
    claims = claims_of(request)
    quest_id = path_id(request)
    # Who may change the quest before what the body says: a caller who may not change it gets
    # its 403 (or 404), not a 400/422 that would teach it the validation rules.
    await _authorise_owner(state, claims, quest_id)
    try:
        patch = validated(QuestPatch, await json_object(request)).domain()
    except InvalidInput as error:
        raise invalid(error) from None
    try:
        quest = await state.database.write(repo.update_quest, quest_id, patch)
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    if quest is None:
        raise _not_found(quest_id)
    payload = quest_json(quest)
    state.cache.put(("quest", quest_id), payload)
    return JSONResponse(payload)


@operation(
    Operation(
        "deleteQuest",
        "Delete a quest",
        "quests",
        {204: Reply("The quest is gone."), **errors(401, 403, 404, 503)},
        description="Only the quest's author or an admin may delete it (403 otherwise).",
        path=_QUEST_ID,
        security="bearer",
    )
)
async def delete_quest(request: Request) -> Response:
    state = app_state(request)
    claims = claims_of(request)
    quest_id = path_id(request)
    await _authorise_owner(state, claims, quest_id)
    try:
        cover = await state.database.write(repo.delete_quest, quest_id)
    except LookupError:
        raise _not_found(quest_id) from None
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    state.cache.drop(("quest", quest_id))
    if cover is not None:
        state.forget_object(cover)
    return Response(status_code=204)


routes = [
    resource("/api/v1/quests", GET=list_quests, POST=create_quest),
    resource("/api/v1/quests/{id}", GET=get_quest, PATCH=update_quest, DELETE=delete_quest),
    resource("/api/v1/quests/{id}/complete", POST=complete_quest),
]
