"""Hostile input against the backend (#11): what a request may carry, and what is served back.

Each case was a 500, an unbounded read, a leak or an orphan before the bounds were added:

- bodies: a declared or chunked body past the route's limit is refused with 413 while it streams
  in (a real uvicorn server and a raw socket, so nothing but HTTP is between them);
- JSON: nesting, huge numbers, NaN/Infinity, ``1e999`` and unpaired surrogates in names are a 400;
- query and path parameters: a crafted cursor or city is a 422 on SQLite and on a real PostgreSQL;
- served images: ``nosniff``, our own ``Content-Disposition``, only the sniffed image type;
- replaced images: concurrent uploads leave exactly one object in a real S3, on both databases;
- health: anonymous ``application/health+json`` shows no per-service detail.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
import uvicorn
from aiobotocore.session import get_session
from starlette.applications import Starlette

from backend.api.images import UPLOADS_AT_ONCE
from backend.app import create_app
from backend.auth import Role
from backend.db import repositories as repo
from backend.settings import Settings
from backend.storage import InMemoryObjectStore
from shared.resilience.presets import S3_RETRY_CONFIG
from tests.backend.integration.conftest import Harness, backend_settings, running
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.polling import eventually
from tests.support.ports import free_port

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JSON_LIMIT = 64 * 1024
UPLOAD_LIMIT = 5 * 1024 * 1024
ANSWER_WITHIN = 10.0
"""Seconds to wait for an answer that, before the bounds, never came (the body was awaited)."""


def _sqlite_settings(tmp_path: Path, s3_server: S3Server | None = None, **more: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}",
        "keys_dir": tmp_path / "keys",
        "health_interval": 0.2,
        **more,
    }
    if s3_server is not None:
        values |= {
            "s3_endpoint_url": s3_server.endpoint_url,
            "s3_bucket": f"qc-{uuid.uuid4().hex[:12]}",
            "s3_access_key": s3_server.access_key,
            "s3_secret_key": s3_server.secret_key,
        }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> AsyncIterator[Harness]:
    """The backend on SQLite, in-process over httpx's ASGI transport, no S3."""
    async with running(_sqlite_settings(tmp_path), "") as harness:
        yield harness


@pytest.fixture(params=["sqlite", "postgresql"])
async def api_with_s3(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
) -> AsyncIterator[Harness]:
    """The backend on SQLite or on a real PostgreSQL, with a real S3 (a bucket of its own)."""
    if request.param == "sqlite":
        settings, dsn = _sqlite_settings(tmp_path, s3_server), ""
    else:
        postgres_server: PostgresServer = request.getfixturevalue("postgres_server")
        pg_proxy: FaultProxy = request.getfixturevalue("pg_proxy")
        settings, dsn = backend_settings(postgres_server, pg_proxy, s3_server, s3_proxy, tmp_path)
    async with running(settings, dsn) as harness:
        yield harness


# -- a real HTTP server, and a client that speaks raw HTTP/1.1 -------------------------------------


@contextlib.asynccontextmanager
async def _served(app: Starlette) -> AsyncIterator[int]:
    """``app`` under a real uvicorn server on a free port; yields the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    )
    task = asyncio.create_task(server.serve())

    async def ready() -> bool:
        if task.done():
            task.result()
        return server.started

    try:
        await eventually(ready, what="uvicorn started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def answers() -> bool:
                return (await client.get("/api/v1/health/ready")).status_code == 200

            await eventually(answers, what="backend ready")
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def http_port(tmp_path: Path) -> AsyncIterator[int]:
    """A real uvicorn serving the backend on SQLite with an in-memory object store."""
    app = create_app(_sqlite_settings(tmp_path), object_store=InMemoryObjectStore())
    async with _served(app) as port:
        yield port


async def _player_token(port: int) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        credentials = {"username": f"p{uuid.uuid4().hex[:10]}", "password": "correct horse"}
        assert (await client.post("/api/v1/auth/register", json=credentials)).status_code == 201
        response = await client.post("/api/v1/auth/token", json=credentials)
        token: str = response.json()["access_token"]
        return token


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def _request_head(method: str, path: str, *headers: str) -> bytes:
    return "\r\n".join(
        [f"{method} {path} HTTP/1.1", "Host: questcity.test", *headers, "", ""]
    ).encode("latin-1")


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends after its answer: b"" once it closes (with a reset, when it closes
    on a body it did not read)."""
    try:
        return await asyncio.wait_for(reader.read(), ANSWER_WITHIN)
    except ConnectionResetError:
        return b""


async def _refusal(
    port: int, head: bytes, chunks: Sequence[bytes] = ()
) -> tuple[int, dict[str, str], dict[str, object], bytes]:
    """Send ``head`` (and ``chunks``, never a body's end), then read the answer and what follows
    it until the server closes: (status, headers, JSON body, bytes after the answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        status, headers, body = await asyncio.wait_for(_read_response(reader), ANSWER_WITHIN)
        return status, headers, json.loads(body), await _until_closed(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# -- bodies ----------------------------------------------------------------------------------------


async def test_a_declared_300_mb_json_body_is_refused_before_a_byte_of_it_is_sent(
    http_port: int,
) -> None:
    head = _request_head(
        "POST",
        "/api/v1/auth/register",
        "Content-Type: application/json",
        f"Content-Length: {300 * 1024 * 1024}",
    )
    status, headers, body, rest = await _refusal(http_port, head)
    assert status == 413
    assert headers["connection"] == "close"
    assert body["error"] == "payload_too_large"
    assert body["limit_bytes"] == JSON_LIMIT
    assert "64 KiB" in str(body["message"])
    assert rest == b""  # and the server closed the connection rather than read on


async def test_a_chunked_json_body_is_cut_off_once_past_the_limit(http_port: int) -> None:
    head = _request_head(
        "POST",
        "/api/v1/auth/register",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    piece = b"x" * 16 * 1024
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 8  # 128 KiB, and never the last chunk
    status, headers, body, rest = await _refusal(http_port, head, chunks)
    assert status == 413
    assert headers["connection"] == "close"
    assert body["error"] == "payload_too_large"
    assert rest == b""


async def test_a_json_route_that_ignores_its_body_still_refuses_a_big_one(http_port: int) -> None:
    # Completing a quest takes no body; the limit holds whether a route reads its body or not.
    token = await _player_token(http_port)
    head = _request_head(
        "POST",
        f"/api/v1/quests/{uuid.uuid4()}/complete",
        f"Authorization: Bearer {token}",
        f"Content-Length: {JSON_LIMIT + 1}",
    )
    status, _, body, _ = await _refusal(http_port, head)
    assert status == 413, body


async def test_uploads_have_their_own_larger_limit(http_port: int) -> None:
    token = await _player_token(http_port)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
        # Over the JSON limit but within the upload limit: accepted as an image.
        image = PNG + b"\x00" * (1024 * 1024)
        response = await client.put(
            "/api/v1/users/me/avatar",
            content=image,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
        )
        assert response.status_code == 200, response.text
    head = _request_head(
        "PUT",
        "/api/v1/users/me/avatar",
        f"Authorization: Bearer {token}",
        "Content-Type: image/png",
        f"Content-Length: {UPLOAD_LIMIT + 1}",
    )
    status, _, body, _ = await _refusal(http_port, head)
    assert status == 413
    assert body["limit_bytes"] == UPLOAD_LIMIT
    assert "5 MiB" in str(body["message"])


async def test_an_upload_that_is_no_image_is_refused_by_its_first_bytes(http_port: int) -> None:
    token = await _player_token(http_port)
    head = _request_head(
        "PUT",
        "/api/v1/users/me/avatar",
        f"Authorization: Bearer {token}",
        "Content-Type: image/png",
        "Transfer-Encoding: chunked",
    )
    piece = b"GIF89a" + b"\x00" * 1024
    status, headers, body, rest = await _refusal(
        http_port, head, [b"%x\r\n%s\r\n" % (len(piece), piece)]
    )
    assert status == 415  # before the body's end, which never comes
    assert headers["connection"] == "close"
    assert body["error"] == "unsupported_media_type"
    assert rest == b""


async def _harness_player(harness: Harness) -> str:
    credentials = {"username": f"p{uuid.uuid4().hex[:10]}", "password": "correct horse"}
    assert (await harness.client.post("/api/v1/auth/register", json=credentials)).is_success
    token: str = (await harness.client.post("/api/v1/auth/token", json=credentials)).json()[
        "access_token"
    ]
    return token


async def test_only_a_few_uploads_are_read_at_once(sqlite_api: Harness) -> None:
    # Each upload may hold up to 5 MiB; the slots bound them together, whatever the connections.
    release = asyncio.Event()
    started = 0

    async def slow_image() -> AsyncIterator[bytes]:
        nonlocal started
        started += 1
        yield PNG
        await release.wait()
        yield b"\x00" * 16

    # Each by an account of its own: an account has one upload at a time.
    tokens = [await _harness_player(sqlite_api) for _ in range(UPLOADS_AT_ONCE + 2)]
    uploads = [
        asyncio.ensure_future(
            sqlite_api.client.put(
                "/api/v1/users/me/avatar", content=slow_image(), headers=sqlite_api.auth(token)
            )
        )
        for token in tokens
    ]

    async def slots_full() -> bool:
        return started >= UPLOADS_AT_ONCE

    await eventually(slots_full, what="the first uploads being read")
    for _ in range(100):  # loop turns enough for every other upload to start, were it let in
        await asyncio.sleep(0)
    assert started == UPLOADS_AT_ONCE
    release.set()
    answers = await asyncio.gather(*uploads)
    assert started == UPLOADS_AT_ONCE + 2
    # No S3 here: each upload, read in its turn, meets the "not configured" answer.
    assert {a.status_code for a in answers} == {503}, [a.text for a in answers]


def _upload_head(token: str, length: int) -> bytes:
    return _request_head(
        "PUT",
        "/api/v1/users/me/avatar",
        f"Authorization: Bearer {token}",
        "Content-Type: image/png",
        f"Content-Length: {length}",
    )


@contextlib.asynccontextmanager
async def _stalled_uploads(port: int, tokens: Sequence[str]) -> AsyncIterator[None]:
    """An upload per token whose body starts (an image's first bytes) and never ends."""
    stalled = [await asyncio.open_connection("127.0.0.1", port) for _ in tokens]
    try:
        for (_, writer), token in zip(stalled, tokens, strict=True):
            writer.write(_upload_head(token, 100_000) + PNG)
            await writer.drain()
        yield
    finally:
        for _, writer in stalled:
            writer.close()


@pytest.fixture
async def budget_port(tmp_path: Path) -> AsyncIterator[int]:
    """A real uvicorn serving the backend with a request budget of 1 s."""
    settings = _sqlite_settings(tmp_path, request_timeout=1.0)
    async with _served(create_app(settings, object_store=InMemoryObjectStore())) as port:
        yield port


async def test_uploads_stalled_in_every_slot_leave_others_a_503_within_the_budget(
    budget_port: int,
) -> None:
    # Uploads that never finish their bodies take every slot; another upload then waited
    # behind them with no bound (on main: no answer at all).
    hogs = [await _player_token(budget_port) for _ in range(UPLOADS_AT_ONCE)]
    other = await _player_token(budget_port)
    async with _stalled_uploads(budget_port, hogs):
        status, headers, body, _ = await _refusal(budget_port, _upload_head(other, len(PNG)), [PNG])
    assert status == 503, body
    assert int(headers["retry-after"]) >= 1
    assert body["error"] == "uploads_busy"
    assert "Uploads are busy" in str(body["message"]), body


async def test_one_account_has_one_upload_at_a_time(budget_port: int) -> None:
    # One account's stalled uploads took every slot (on main: a fifth upload, anyone's, hung);
    # its next upload now waits its turn within the budget, then is a 429.
    hog, other = await _player_token(budget_port), await _player_token(budget_port)
    async with _stalled_uploads(budget_port, [hog]):
        status, headers, body, _ = await _refusal(budget_port, _upload_head(hog, len(PNG)), [PNG])
        assert status == 429, body
        assert int(headers["retry-after"]) >= 1
        assert "already have one in progress" in str(body["message"]), body

        reader, writer = await asyncio.open_connection("127.0.0.1", budget_port)
        try:
            writer.write(_upload_head(other, len(PNG)) + PNG)
            answer = await asyncio.wait_for(_read_response(reader), ANSWER_WITHIN)
        finally:
            writer.close()
        assert answer[0] == 200, answer


# -- JSON the parser must refuse, not crash on -----------------------------------------------------

_HOSTILE_JSON: dict[str, tuple[bytes, str]] = {
    "nested-30000-deep": (b"[" * 30_000 + b"]" * 30_000, "json_too_complex"),
    "nested-in-a-field": (
        b'{"username": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b', "password": "p"}',
        "json_too_complex",
    ),
    "integer-of-5000-digits": (
        b'{"username": "u", "password": ' + b"9" * 5000 + b"}",
        "json_too_complex",
    ),
    "float-of-5000-digits": (b'{"username": 0.' + b"1" * 5000 + b"}", "json_too_complex"),
    "NaN": (b'{"username": NaN, "password": "p"}', "malformed_json"),
    "Infinity": (b'{"username": "u", "password": Infinity}', "malformed_json"),
    "-Infinity": (b'{"username": "u", "password": -Infinity}', "malformed_json"),
    "1e999": (b'{"username": "u", "password": 1e999}', "malformed_json"),
    "surrogate-in-a-name": (
        b'{"\\ud800": 1, "title": "t", "city": "c", "points": 1}',
        "malformed_json",
    ),
    "not-utf-8": (b'{"username": "\xff\xfe"}', "malformed_json"),
}


@pytest.mark.parametrize("route", ["/api/v1/auth/register", "/api/v1/quests"])
@pytest.mark.parametrize("case", list(_HOSTILE_JSON))
async def test_hostile_json_is_a_400_with_a_reason(
    sqlite_api: Harness, route: str, case: str
) -> None:
    body, code = _HOSTILE_JSON[case]
    response = await sqlite_api.client.post(
        route,
        content=body,
        headers={"Content-Type": "application/json", **sqlite_api.auth()},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == code
    assert "Traceback" not in response.text


async def test_json_within_the_bounds_still_reaches_the_field_checks(sqlite_api: Harness) -> None:
    # 32 levels and a 100-character number are allowed: the limits cut off only the absurd.
    body = b'{"title": ' + b"[" * 31 + b"]" * 31 + b', "city": "c", "points": ' + b"1" * 100 + b"}"
    response = await sqlite_api.client.post(
        "/api/v1/quests",
        content=body,
        headers={"Content-Type": "application/json", **sqlite_api.auth()},
    )
    assert response.status_code == 422, response.text
    assert set(response.json()["fields"]) == {"title", "points"}


# -- query and path parameters meet a real database ------------------------------------------------


def _cursor(stamp: str, quest_id: str) -> str:
    return base64.urlsafe_b64encode(f"{stamp}|{quest_id}".encode()).decode().rstrip("=")


_HOSTILE_PARAMS: dict[str, dict[str, str]] = {
    "cursor-id-with-NUL": {"cursor": _cursor("2026-01-01T00:00:00+00:00", "a\x00b")},
    "cursor-after-year-9999-in-UTC": {"cursor": _cursor("9999-12-31T23:59:59-05:00", "x")},
    "cursor-before-year-1-in-UTC": {"cursor": _cursor("0001-01-01T00:00:00+05:00", "x")},
    "cursor-id-too-long": {"cursor": _cursor("2026-01-01T00:00:00+00:00", "x" * 5000)},
    "city-with-NUL": {"city": "Ka\x00zan"},
    "city-longer-than-any-city": {"city": "K" * 5000},
    "limit-of-5000-digits": {"limit": "9" * 5000},
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The backend on SQLite or on a real PostgreSQL (no S3)."""
    if request.param == "sqlite":
        async with running(_sqlite_settings(tmp_path), "") as harness:
            yield harness
        return
    postgres_server: PostgresServer = request.getfixturevalue("postgres_server")
    pg_proxy: FaultProxy = request.getfixturevalue("pg_proxy")
    name = f"qc_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    settings = Settings(
        database_url=postgres_server.url_for(database=name, address=pg_proxy.address),
        keys_dir=tmp_path / "keys",
        health_interval=0.2,
    )
    async with running(settings, postgres_server.dsn_for(database=name)) as harness:
        yield harness


@pytest.mark.parametrize("case", list(_HOSTILE_PARAMS))
async def test_hostile_quest_list_parameters_are_a_422(api: Harness, case: str) -> None:
    assert (await api.create_quest("a quest")).status_code == 201
    response = await api.client.get("/api/v1/quests", params=_HOSTILE_PARAMS[case])
    assert response.status_code == 422, response.text
    fields = response.json()["fields"]
    assert set(fields) == set(_HOSTILE_PARAMS[case])
    assert "whole number" not in str(fields)  # each says what is wrong with it


@pytest.mark.parametrize("quest_id", ["a%00b", "x" * 5000])
async def test_hostile_path_ids_name_nothing(api: Harness, quest_id: str) -> None:
    for path in (f"/api/v1/quests/{quest_id}", f"/api/v1/quests/{quest_id}/cover"):
        response = await api.client.get(path)
        assert response.status_code == 404, (path[:40], response.text)


async def test_a_cursor_this_api_returned_still_pages(api: Harness) -> None:
    for n in range(3):
        assert (await api.create_quest(f"quest {n}")).status_code == 201
    first = (await api.client.get("/api/v1/quests", params={"limit": 2})).json()
    rest = await api.client.get(
        "/api/v1/quests", params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert rest.status_code == 200
    titles = [q["title"] for q in first["items"] + rest.json()["items"]]
    assert sorted(titles) == ["quest 0", "quest 1", "quest 2"]


# -- what is served back ---------------------------------------------------------------------------


async def _quest_with_cover(harness: Harness) -> str:
    quest_id: str = (await harness.create_quest("covered")).json()["id"]
    response = await harness.client.put(
        f"/api/v1/quests/{quest_id}/cover", content=PNG, headers=harness.auth()
    )
    assert response.status_code == 200, response.text
    return quest_id


async def test_served_images_carry_nosniff_and_our_own_file_name(api_with_s3: Harness) -> None:
    quest_id = await _quest_with_cover(api_with_s3)
    response = await api_with_s3.client.get(f"/api/v1/quests/{quest_id}/cover")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == 'inline; filename="cover.png"'
    assert response.headers["content-type"] == "image/png"
    assert response.content == PNG


async def test_an_object_that_is_not_an_image_is_never_served_as_what_it_claims(
    api_with_s3: Harness,
) -> None:
    # Whoever else can write the bucket (or an older server) swaps the bytes and the type.
    quest_id = await _quest_with_cover(api_with_s3)
    state = api_with_s3.state
    _, key = await state.database.read(repo.get_cover_key, quest_id)
    assert key is not None and state.storage is not None
    await state.storage.store.put(key, b"<html><script>alert(1)</script></html>", "text/html")
    response = await api_with_s3.client.get(f"/api/v1/quests/{quest_id}/cover")
    assert response.headers["content-type"] == "image/png"
    assert b"<script>" not in response.content
    assert response.headers["x-content-type-options"] == "nosniff"


# -- replaced images leave no orphan ---------------------------------------------------------------

# A replaced object is deleted in the background through the S3 retry policy: on a loaded machine
# (a CI worker beside another) one attempt can time out, so the bound is the policy's own deadline.
assert S3_RETRY_CONFIG.timeout is not None
DELETED_WITHIN = S3_RETRY_CONFIG.timeout


async def _objects(s3_server: S3Server, settings: Settings, prefix: str) -> set[str]:
    async with get_session().create_client("s3", **s3_server.client_kwargs()) as client:
        listing = await client.list_objects_v2(Bucket=settings.s3_bucket, Prefix=prefix)
    return {item["Key"] for item in listing.get("Contents", [])}


async def test_concurrent_avatar_uploads_leave_exactly_one_object(
    api_with_s3: Harness, s3_server: S3Server
) -> None:
    harness = api_with_s3
    images = [PNG + bytes([n]) * 16 for n in range(8)]
    answers = await asyncio.gather(
        *(
            harness.client.put("/api/v1/users/me/avatar", content=image, headers=harness.auth())
            for image in images
        )
    )
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    user_id = answers[0].json()["user_id"]

    prefix = f"avatars/{user_id}/"

    async def only_the_current_one_left() -> bool:
        _, key = await harness.state.database.read(repo.get_avatar_key, user_id)
        return await _objects(s3_server, harness.settings, prefix) == {key}

    await eventually(
        only_the_current_one_left,
        what=f"exactly the current object under {prefix}",
        within=DELETED_WITHIN,
    )


async def test_concurrent_cover_uploads_and_a_delete_leave_no_object(
    api_with_s3: Harness, s3_server: S3Server
) -> None:
    harness = api_with_s3
    quest_id = await _quest_with_cover(harness)
    uploads = [
        harness.client.put(
            f"/api/v1/quests/{quest_id}/cover", content=PNG + bytes([n]), headers=harness.auth()
        )
        for n in range(6)
    ]
    deletion = harness.client.delete(f"/api/v1/quests/{quest_id}", headers=harness.auth())
    answers = await asyncio.gather(*uploads[:3], deletion, *uploads[3:])
    assert {a.status_code for a in answers} <= {200, 204, 404}, [a.text for a in answers]

    async def none_left() -> bool:
        return await _objects(s3_server, harness.settings, f"covers/{quest_id}/") == set()

    await eventually(none_left, what="no cover object of the deleted quest", within=DELETED_WITHIN)


# -- health ----------------------------------------------------------------------------------------


async def test_anonymous_health_json_shows_no_service_detail(sqlite_api: Harness) -> None:
    accept = {"Accept": "application/health+json"}
    anonymous = await sqlite_api.client.get("/api/v1/health/", headers=accept)
    assert anonymous.status_code == 200
    assert anonymous.headers["content-type"].startswith("application/health+json")
    assert "checks" not in anonymous.json()
    assert "database" not in anonymous.text
    player = await sqlite_api.client.get("/api/v1/health/", headers={**accept, **sqlite_api.auth()})
    assert "checks" not in player.json()
    operator = sqlite_api.state.token_service().mint("ops", Role.OPERATOR, 600)
    staff = await sqlite_api.client.get(
        "/api/v1/health/", headers={**accept, **sqlite_api.auth(operator)}
    )
    assert "database:responseTime" in staff.json()["checks"]


async def test_public_mode_still_shows_health_json_detail(tmp_path: Path) -> None:
    async with running(_sqlite_settings(tmp_path, health_details="public"), "") as harness:
        response = await harness.client.get(
            "/api/v1/health/", headers={"Accept": "application/health+json"}
        )
    assert "database:responseTime" in response.json()["checks"]
