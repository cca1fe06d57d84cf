"""Quest covers and user avatars in S3 (DESIGN §7, §8).

Uploads are checked by size (413) and content (415), stored under keys the server makes, and
answer 503 with ``Retry-After`` while storage is down. Downloads fall back to a placeholder image
(200, marked ``X-QuestCity-Degraded: s3``) while storage is down or not configured.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backend.api.common import claims_of, player_claims
from backend.api.errors import ApiError
from backend.api.routing import path_id, resource
from backend.auth import Claims, Role
from backend.db import repositories as repo
from backend.degradation import DEGRADED_HEADER, DEPENDENCY_FAILURES, unavailable
from backend.state import AppState, app_state
from backend.storage import (
    PLACEHOLDER_CONTENT_TYPE,
    PLACEHOLDER_PNG,
    ImageTooLarge,
    ObjectNotFound,
    ObjectStoreNotConfigured,
    UnsupportedImage,
    object_key,
    validate_image,
)

_CACHE_IMMUTABLE = "private, max-age=300"


async def _read_upload(request: Request, state: AppState) -> bytes:
    limit = state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", _too_large(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", _too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return f"Uploads are limited to {limit // (1024 * 1024)} MiB."


async def _store(state: AppState, kind: str, owner: str, data: bytes) -> str:
    try:
        image = validate_image(data, max_bytes=state.settings.max_upload_bytes)
    except ImageTooLarge as error:
        raise ApiError(413, "payload_too_large", str(error)) from None
    except UnsupportedImage as error:
        raise ApiError(415, "unsupported_media_type", str(error)) from None
    store = state.store
    if store is None or state.s3 is None:
        raise unavailable("s3", ObjectStoreNotConfigured())
    key = object_key(kind, owner, image)  # type: ignore[arg-type]
    try:
        # A new, unique key: putting it twice is harmless, so the upload may be retried.
        await state.s3_call("put_object", store.put, key, data, image.content_type)
    except DEPENDENCY_FAILURES as error:
        raise unavailable("s3", error) from None
    return key


async def _serve(state: AppState, key: str | None, missing: str) -> Response:
    if key is None:
        raise ApiError(404, "not_found", missing)
    store = state.store
    if store is None or state.s3 is None:
        return _placeholder()
    try:
        # Not retried: with a placeholder to fall back on, waiting out retries helps nobody.
        stored = await state.s3_call_once("get_object", store.get, key)
    except ObjectNotFound:
        raise ApiError(404, "not_found", missing) from None
    except DEPENDENCY_FAILURES:
        return _placeholder()
    return Response(
        stored.data,
        media_type=stored.content_type,
        headers={"Cache-Control": _CACHE_IMMUTABLE, "ETag": f'"{stored.etag}"'}
        if stored.etag
        else {"Cache-Control": _CACHE_IMMUTABLE},
    )


def _placeholder() -> Response:
    return Response(
        PLACEHOLDER_PNG,
        media_type=PLACEHOLDER_CONTENT_TYPE,
        headers={DEGRADED_HEADER: "s3", "Cache-Control": "no-store"},
    )


KeyReader = Callable[[AsyncSession, str], Awaitable[tuple[bool, str | None]]]


async def _image_key(
    state: AppState, reader: KeyReader, ident: str, what: str
) -> tuple[str | None, bool]:
    """The object key of an image, and whether it came from the last good copy (the database
    being down)."""
    cache_key = ("image-key", what, ident)
    stale = False
    try:
        exists, key = await state.database.read(reader, ident)
    except DEPENDENCY_FAILURES as error:
        cached = state.cache.get(cache_key)
        if cached is None:
            raise unavailable("database", error) from None
        exists, key = cached.payload  # type: ignore[misc]
        stale = True
    else:
        state.cache.put(cache_key, (exists, key))
    if not exists:
        raise ApiError(404, "not_found", f"There is no {what} {ident!r}.")
    return key, stale


def _mark_stale(response: Response, stale: bool) -> Response:
    if stale:
        marked = {v.strip() for v in response.headers.get(DEGRADED_HEADER, "").split(",") if v}
        response.headers[DEGRADED_HEADER] = ", ".join(sorted(marked | {"database"}))
    return response


async def put_cover(request: Request) -> Response:
    state = app_state(request)
    claims = claims_of(request)
    quest_id = path_id(request)
    await _require_quest_owner(state, claims, quest_id)
    data = await _read_upload(request, state)
    key = await _store(state, "cover", quest_id, data)
    try:
        old = await state.database.write(repo.set_cover_key, quest_id, key)
    except LookupError:
        state.forget_object(key)
        raise ApiError(404, "not_found", f"There is no quest {quest_id!r}.") from None
    except DEPENDENCY_FAILURES as error:
        state.forget_object(key)
        raise unavailable("database", error) from None
    if old is not None:
        state.forget_object(old)
    return JSONResponse(
        {"quest_id": quest_id, "cover_url": f"/api/v1/quests/{quest_id}/cover"}, status_code=200
    )


async def _require_quest_owner(state: AppState, claims: Claims, quest_id: str) -> None:
    try:
        owner = await state.database.read(repo.quest_owner, quest_id)
    except DEPENDENCY_FAILURES as error:
        raise unavailable("database", error) from None
    if owner is None:
        raise ApiError(404, "not_found", f"There is no quest {quest_id!r}.")
    if owner != claims.sub and claims.role is not Role.ADMIN:
        raise ApiError(403, "forbidden", "Only the quest's author or an admin may change it.")


async def get_cover(request: Request) -> Response:
    state = app_state(request)
    quest_id = path_id(request)
    key, stale = await _image_key(state, repo.get_cover_key, quest_id, "quest")
    return _mark_stale(await _serve(state, key, "This quest has no cover image."), stale)


async def put_avatar(request: Request) -> Response:
    state = app_state(request)
    claims = player_claims(request)
    data = await _read_upload(request, state)
    key = await _store(state, "avatar", claims.sub, data)
    try:
        old = await state.database.write(repo.set_avatar_key, claims.sub, key)
    except LookupError:
        state.forget_object(key)
        raise ApiError(404, "not_found", "Your account no longer exists.") from None
    except DEPENDENCY_FAILURES as error:
        state.forget_object(key)
        raise unavailable("database", error) from None
    if old is not None:
        state.forget_object(old)
    return JSONResponse({"user_id": claims.sub, "avatar_url": f"/api/v1/users/{claims.sub}/avatar"})


async def get_avatar(request: Request) -> Response:
    state = app_state(request)
    user_id = path_id(request)
    key, stale = await _image_key(state, repo.get_avatar_key, user_id, "user")
    return _mark_stale(await _serve(state, key, "This user has no avatar."), stale)


routes = [
    resource("/api/v1/quests/{id}/cover", GET=get_cover, PUT=put_cover),
    resource("/api/v1/users/me/avatar", PUT=put_avatar),
    resource("/api/v1/users/{id}/avatar", GET=get_avatar),
]
