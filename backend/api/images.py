"""Quest covers and user avatars in S3 (ARCHITECTURE §7, §8).

Uploads are checked by size (413) and content (415), stored under keys the server makes, and
answer 503 with ``Retry-After`` while storage is down. Downloads fall back to a placeholder image
(200, marked ``X-QuestCity-Degraded: s3``) while storage is down or not configured.

Upload bodies are bounded while they stream in (:data:`upload_allowances`, applied by
``body_limits``). What is served is sniffed again and sent only as that image type, with
``X-Content-Type-Options: nosniff`` and a ``Content-Disposition`` built from our own names, so
neither a browser nor whatever wrote the bucket decides how the bytes are read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from backend.api.body_limits import BodyAllowance
from backend.api.common import claims_of, player_claims
from backend.api.errors import ApiError
from backend.api.models.errors import Error, ServiceUnavailableError
from backend.api.models.images import AvatarUploaded, CoverUploaded
from backend.api.operations import Operation, RawBody, Reply, Schema, errors, operation
from backend.api.routing import path_id, resource
from backend.auth import Claims, Role
from backend.db import repositories as repo
from backend.degradation import DEGRADED_HEADER, DEPENDENCY_FAILURES, unavailable
from backend.request_budget import budget_from_now
from backend.state import AppState, app_state
from backend.storage import (
    PLACEHOLDER_CONTENT_TYPE,
    PLACEHOLDER_PNG,
    ImageKind,
    ImageTooLarge,
    ObjectNotFound,
    ObjectStoreNotConfigured,
    UnsupportedImage,
    object_key,
    sniff_image,
    validate_image,
)

_CACHE_IMMUTABLE = "private, max-age=300"

Kind = Literal["cover", "avatar"]

logger = logging.getLogger("backend.api")


_SNIFF_BYTES = 12
"""Leading bytes that tell every accepted image type apart (WebP needs all twelve)."""


async def _read_upload(request: Request) -> bytes:
    """The upload's bytes, refused with 415 as soon as its leading bytes are no accepted image
    (and with the connection closed, so the rest is not read). Its size is bounded on the way in
    by BodyLimitMiddleware, with the upload allowance."""
    body = bytearray()
    sniffed = False
    async for chunk in request.stream():
        body += chunk
        if not sniffed and len(body) >= _SNIFF_BYTES:
            try:
                sniff_image(bytes(body[:_SNIFF_BYTES]))
            except UnsupportedImage as error:
                raise ApiError(
                    415, "unsupported_media_type", str(error), headers={"Connection": "close"}
                ) from None
            sniffed = True
    return bytes(body)


async def _store(state: AppState, kind: Kind, owner: str, data: bytes) -> str:
    try:
        image = validate_image(data, max_bytes=state.settings.max_upload_bytes)
    except ImageTooLarge as error:
        raise ApiError(413, "payload_too_large", str(error)) from None
    except UnsupportedImage as error:
        raise ApiError(415, "unsupported_media_type", str(error)) from None
    storage = state.storage
    if storage is None:
        raise unavailable("s3", ObjectStoreNotConfigured())
    key = object_key(kind, owner, image)
    try:
        # A new, unique key: putting it twice is harmless, so the upload may be retried.
        await storage.put(key, data, image.content_type)
    except DEPENDENCY_FAILURES as error:
        raise unavailable("s3", error) from None
    return key


def _served_headers(kind: Kind, extension: str) -> dict[str, str]:
    # The file name is ours ("cover.png"), never a client's: nothing to quote or escape.
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{kind}.{extension}"',
    }


async def _serve(state: AppState, kind: Kind, key: str | None, missing: str) -> Response:
    if key is None:
        raise ApiError(404, "not_found", missing)
    storage = state.storage
    if storage is None:
        return _placeholder(kind)
    try:
        # Not retried: with a placeholder to fall back on, waiting out retries helps nobody.
        stored = await storage.get_once(key)
    except ObjectNotFound:
        raise ApiError(404, "not_found", missing) from None
    except DEPENDENCY_FAILURES:
        return _placeholder(kind)
    try:
        image = sniff_image(stored.data)
    except UnsupportedImage:
        # Only what passed the upload check is ever written; anything else in the bucket was
        # put there some other way and is not served as ours.
        logger.warning(
            "stored object %s is not an accepted image; serving the placeholder",
            key,
            extra={"event": "object_not_an_image", "key": key},
        )
        return _placeholder(kind)
    headers = {"Cache-Control": _CACHE_IMMUTABLE, **_served_headers(kind, image.extension)}
    if stored.etag:
        headers["ETag"] = f'"{stored.etag}"'
    return Response(stored.data, media_type=image.content_type, headers=headers)


def _placeholder(kind: Kind) -> Response:
    return Response(
        PLACEHOLDER_PNG,
        media_type=PLACEHOLDER_CONTENT_TYPE,
        headers={
            DEGRADED_HEADER: "s3",
            "Cache-Control": "no-store",
            **_served_headers(kind, "png"),
        },
    )


_IMAGE_TYPES = tuple(kind.content_type for kind in ImageKind)
_BYTES: Schema = {"type": "string", "format": "binary"}
_UPLOAD = RawBody(
    "The image's bytes. Its type is judged by its leading bytes, not by `Content-Type`: a body "
    "whose first bytes are no accepted image is refused (415) before the rest is read. At most "
    "four uploads are handled at once, one per account; more wait their turn, within the "
    "request's budget, before their bodies are read. The budget for storing the image counts "
    "from the body's last byte.",
    _IMAGE_TYPES,
    _BYTES,
)
_IMAGE = Reply(
    "The image (the placeholder PNG, marked, while file storage is down or not configured).",
    _BYTES,
    media=_IMAGE_TYPES,
    headers=("Degraded", "CacheControl", "ETag", "ContentTypeOptions", "ContentDisposition"),
)
_UPLOAD_ERRORS: dict[int, Reply | str] = {
    **errors(401, 403, 404, 413, 415),
    408: Reply(
        "The body stopped arriving: no byte for the server's header timeout "
        "(`QUESTCITY_HEADER_TIMEOUT`). The connection is closed.",
        {"type": "string"},
        media=("text/plain",),
    ),
    429: Reply(
        "This account's earlier upload did not finish within this request's budget "
        "(`too_many_requests`): one upload at a time per account, the next waits its turn. "
        "Retry once it has finished.",
        Error,
        headers=("RetryAfter",),
    ),
    503: Reply(
        "A dependency cannot store the upload now (`service` names it; nothing was written), or "
        "every upload slot stayed taken for the request's budget (`uploads_busy`).",
        (ServiceUnavailableError, Error),
        headers=("RetryAfter",),
    ),
}


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


@operation(
    Operation(
        "putQuestCover",
        "Upload a quest's cover image",
        "images",
        {200: Reply("Stored.", CoverUploaded), **_UPLOAD_ERRORS},
        description="Only the quest's author or an admin (403 otherwise).",
        body=_UPLOAD,
        path={"id": "The quest's id."},
        security="bearer",
    )
)
async def put_cover(request: Request) -> Response:
    state = app_state(request)
    claims = claims_of(request)
    quest_id = path_id(request)
    await _require_quest_owner(state, claims, quest_id)
    data = await _read_upload(request)
    with budget_from_now(state.settings.request_timeout, clock=state.clock):
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


@operation(
    Operation(
        "getQuestCover",
        "A quest's cover image",
        "images",
        {200: _IMAGE, **errors(404, 503)},
        description="404 for an unknown quest and for a quest without a cover.",
        path={"id": "The quest's id."},
    )
)
async def get_cover(request: Request) -> Response:
    state = app_state(request)
    quest_id = path_id(request)
    key, stale = await _image_key(state, repo.get_cover_key, quest_id, "quest")
    return _mark_stale(await _serve(state, "cover", key, "This quest has no cover image."), stale)


@operation(
    Operation(
        "putMyAvatar",
        "Upload the caller's avatar",
        "images",
        {200: Reply("Stored.", AvatarUploaded), **_UPLOAD_ERRORS},
        description="The token must be a player's (staff tokens have no account): 403 otherwise; "
        "404 when the token's account no longer exists.",
        body=_UPLOAD,
        security="bearer",
    )
)
async def put_avatar(request: Request) -> Response:
    state = app_state(request)
    claims = player_claims(request)
    data = await _read_upload(request)
    with budget_from_now(state.settings.request_timeout, clock=state.clock):
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


@operation(
    Operation(
        "getUserAvatar",
        "A user's avatar",
        "images",
        {200: _IMAGE, **errors(404, 503)},
        description="404 for an unknown user and for a user without an avatar.",
        path={"id": "The user's id."},
    )
)
async def get_avatar(request: Request) -> Response:
    state = app_state(request)
    user_id = path_id(request)
    key, stale = await _image_key(state, repo.get_avatar_key, user_id, "user")
    return _mark_stale(await _serve(state, "avatar", key, "This user has no avatar."), stale)


cover = resource("/api/v1/quests/{id}/cover", GET=get_cover, PUT=put_cover)
own_avatar = resource("/api/v1/users/me/avatar", PUT=put_avatar)
avatar = resource("/api/v1/users/{id}/avatar", GET=get_avatar)

routes = [cover, own_avatar, avatar]


UPLOADS_AT_ONCE = 4
"""Uploads handled at once; more wait their turn before their bodies are read, so uploads hold
at most this many times ``QUESTCITY_MAX_UPLOAD_BYTES`` of memory whatever the connections."""


def upload_allowances(max_upload_bytes: int, at_once: int = UPLOADS_AT_ONCE) -> list[BodyAllowance]:
    """The routes whose bodies are images, up to ``max_upload_bytes``, ``at_once`` of them at a
    time (between them); all other routes take JSON."""
    slots = asyncio.Semaphore(at_once)
    return [
        BodyAllowance("PUT", cover, max_upload_bytes, "Uploads", slots, _uploader),
        BodyAllowance("PUT", own_avatar, max_upload_bytes, "Uploads", slots, _uploader),
    ]


def _uploader(scope: Scope) -> str | None:
    """The account an upload is for, from its verified token (None without a valid one: the
    route refuses it before reading a byte). Verified, so no one can queue as someone else."""
    try:
        return claims_of(Request(scope)).sub
    except ApiError:
        return None
