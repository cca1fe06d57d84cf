"""The quest rules by example, through HTTP (ARCHITECTURE §7): who may change a quest, how the list
pages, and what completing a quest records.

Each test names one rule. The backend runs in-process on SQLite (paging also on a real
PostgreSQL, whose timestamps and ordering differ) and is driven through httpx's ASGI transport,
so the tests hold whatever the route modules look like inside.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Role
from backend.db.models import Quest
from backend.settings import Settings
from tests.backend.integration.conftest import Harness, running
from tests.support import FaultProxy, PostgresServer

QUESTS = "/api/v1/quests"


@dataclass(frozen=True)
class Player:
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}",
        keys_dir=tmp_path / "keys",
        health_interval=0.2,
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(_sqlite_settings(tmp_path), "") as harness:
        yield harness


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db_api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The backend on SQLite or on a real PostgreSQL (no S3)."""
    if request.param == "sqlite":
        settings, dsn = _sqlite_settings(tmp_path), ""
    else:
        postgres_server: PostgresServer = request.getfixturevalue("postgres_server")
        pg_proxy: FaultProxy = request.getfixturevalue("pg_proxy")
        name = f"qc_{uuid.uuid4().hex[:12]}"
        postgres_server.create_database(name)
        settings = Settings(
            database_url=postgres_server.url_for(database=name, address=pg_proxy.address),
            keys_dir=tmp_path / "keys",
            health_interval=0.2,
        )
        dsn = postgres_server.dsn_for(database=name)
    async with running(settings, dsn) as harness:
        yield harness


async def new_player(api: Harness) -> Player:
    credentials = {"username": f"player-{uuid.uuid4().hex[:8]}", "password": "correct horse"}
    registered = await api.client.post("/api/v1/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    token = await api.client.post("/api/v1/auth/token", json=credentials)
    assert token.status_code == 200, token.text
    return Player(registered.json()["id"], token.json()["access_token"])


def staff(api: Harness, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.state.token_service().mint('staff', role, 600)}"}


async def quest_by(
    api: Harness, author: Player, title: str = "Old town walk", points: int = 5
) -> dict[str, object]:
    response = await api.client.post(
        QUESTS,
        json={"title": title, "city": "Kazan", "points": points, "description": "d"},
        headers=author.auth,
    )
    assert response.status_code == 201, response.text
    quest: dict[str, object] = response.json()
    return quest


async def current(api: Harness, quest: dict[str, object]) -> httpx.Response:
    return await api.client.get(f"{QUESTS}/{quest['id']}")


def names_the_field(response: httpx.Response, name: str) -> bool:
    """Whether an error answer says which field is wrong, in its fields or in its message."""
    body = response.json()
    fields = body.get("fields")
    return (isinstance(fields, dict) and name in fields) or name in str(body.get("message", ""))


# -- only the author or an admin changes a quest -----------------------------------------------


async def test_the_author_may_patch_their_own_quest(api: Harness) -> None:
    author = await new_player(api)
    quest = await quest_by(api, author)

    response = await api.client.patch(
        f"{QUESTS}/{quest['id']}", json={"title": "New town walk"}, headers=author.auth
    )

    assert response.status_code == 200, response.text
    assert response.json()["title"] == "New town walk"
    assert (await current(api, quest)).json()["title"] == "New town walk"


async def test_another_player_may_not_patch_a_quest_and_it_stays_as_it_was(api: Harness) -> None:
    author, other = await new_player(api), await new_player(api)
    quest = await quest_by(api, author)
    before = (await current(api, quest)).json()

    response = await api.client.patch(
        f"{QUESTS}/{quest['id']}", json={"title": "Hijacked", "points": 10_000}, headers=other.auth
    )

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert (await current(api, quest)).json() == before


async def test_an_operator_is_not_an_author_and_may_not_patch_a_quest(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api))
    before = (await current(api, quest)).json()

    response = await api.client.patch(
        f"{QUESTS}/{quest['id']}", json={"title": "Ops edit"}, headers=staff(api, Role.OPERATOR)
    )

    assert response.status_code == 403, response.text
    assert (await current(api, quest)).json() == before


async def test_an_admin_may_patch_anyones_quest(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api))

    response = await api.client.patch(
        f"{QUESTS}/{quest['id']}", json={"points": 7}, headers=staff(api, Role.ADMIN)
    )

    assert response.status_code == 200, response.text
    assert (await current(api, quest)).json()["points"] == 7


async def test_patch_without_a_token_is_401_and_changes_nothing(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api))
    before = (await current(api, quest)).json()

    response = await api.client.patch(f"{QUESTS}/{quest['id']}", json={"title": "Anonymous"})

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await current(api, quest)).json() == before


# Who may change the quest is decided before the body is read: someone who may not change it
# learns nothing of the validation rules, and a quest that is not there is a 404 whatever was sent.
BAD_BODIES = [
    pytest.param({"points": -1}, id="invalid-field"),
    pytest.param({"title": "x" * 1_000}, id="too-long-title"),
    pytest.param(["not", "an", "object"], id="not-an-object"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_another_player_sending_a_bad_patch_is_403_not_422(
    api: Harness, body: object
) -> None:
    author, other = await new_player(api), await new_player(api)
    quest = await quest_by(api, author)
    before = (await current(api, quest)).json()

    response = await api.client.patch(f"{QUESTS}/{quest['id']}", json=body, headers=other.auth)

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert "fields" not in response.json()
    assert (await current(api, quest)).json() == before


async def test_another_player_sending_a_patch_that_is_not_json_is_403_not_400(
    api: Harness,
) -> None:
    author, other = await new_player(api), await new_player(api)
    quest = await quest_by(api, author)

    response = await api.client.patch(
        f"{QUESTS}/{quest['id']}",
        content=b"{not json",
        headers={**other.auth, "Content-Type": "application/json"},
    )

    assert response.status_code == 403, response.text


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_a_bad_patch_of_a_quest_that_is_not_there_is_404(api: Harness, body: object) -> None:
    response = await api.client.patch(
        f"{QUESTS}/{uuid.uuid4()}", json=body, headers=(await new_player(api)).auth
    )

    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("body", "field"), [({"points": -1}, "points"), ({"title": "x" * 1_000}, "title")]
)
async def test_the_author_sending_a_bad_patch_is_told_which_field_is_wrong(
    api: Harness, body: dict[str, object], field: str
) -> None:
    author = await new_player(api)
    quest = await quest_by(api, author)
    before = (await current(api, quest)).json()

    response = await api.client.patch(f"{QUESTS}/{quest['id']}", json=body, headers=author.auth)

    assert response.status_code == 422, response.text
    assert names_the_field(response, field), response.text
    assert (await current(api, quest)).json() == before


async def test_the_author_may_delete_their_own_quest(api: Harness) -> None:
    author = await new_player(api)
    quest = await quest_by(api, author)

    response = await api.client.delete(f"{QUESTS}/{quest['id']}", headers=author.auth)

    assert response.status_code == 204, response.text
    assert (await current(api, quest)).status_code == 404


async def test_another_player_may_not_delete_a_quest_and_it_is_still_there(api: Harness) -> None:
    author, other = await new_player(api), await new_player(api)
    quest = await quest_by(api, author)

    response = await api.client.delete(f"{QUESTS}/{quest['id']}", headers=other.auth)

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert (await current(api, quest)).status_code == 200


async def test_an_admin_may_delete_anyones_quest(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api))

    response = await api.client.delete(f"{QUESTS}/{quest['id']}", headers=staff(api, Role.ADMIN))

    assert response.status_code == 204, response.text
    assert (await current(api, quest)).status_code == 404


async def test_delete_without_a_token_is_401_and_the_quest_is_still_there(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api))

    response = await api.client.delete(f"{QUESTS}/{quest['id']}")

    assert response.status_code == 401, response.text
    assert (await current(api, quest)).status_code == 200


# -- cursor paging -----------------------------------------------------------------------------


async def all_pages(api: Harness, limit: int) -> list[dict[str, object]]:
    """Every page of the list, following ``next_cursor`` until it is null."""
    pages: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await api.client.get(QUESTS, params=params)
        assert response.status_code == 200, response.text
        page: dict[str, object] = response.json()
        pages.append(page)
        next_cursor = page["next_cursor"]
        if next_cursor is None:
            return pages
        assert isinstance(next_cursor, str)
        cursor = next_cursor
        assert len(pages) <= 10, "the cursor does not move on"


def ids(page: dict[str, object]) -> list[str]:
    items = page["items"]
    assert isinstance(items, list)
    return [str(item["id"]) for item in items]


async def test_pages_of_k_list_every_quest_exactly_once_newest_first(
    any_db_api: Harness,
) -> None:
    author = await new_player(any_db_api)
    created = [await quest_by(any_db_api, author, f"quest {n}") for n in range(7)]
    # "Newest first" (the OpenAPI document): by creation time, then id for equal times.
    newest_first = sorted(created, key=lambda q: (str(q["created_at"]), str(q["id"])), reverse=True)

    pages = await all_pages(any_db_api, limit=3)

    assert [len(ids(page)) for page in pages] == [3, 3, 1]
    assert [quest_id for page in pages for quest_id in ids(page)] == [q["id"] for q in newest_first]
    assert [q["title"] for q in newest_first] == [f"quest {n}" for n in reversed(range(7))]


async def test_a_page_that_ends_the_list_has_no_next_cursor_even_when_it_is_full(
    api: Harness,
) -> None:
    author = await new_player(api)
    for n in range(6):
        await quest_by(api, author, f"quest {n}")

    pages = await all_pages(api, limit=3)

    assert [len(ids(page)) for page in pages] == [3, 3]  # no empty page after the last
    assert pages[-1]["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "bm90IGEgY3Vyc29y",  # base64 of "not a cursor": no time, no id
        "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHw",  # "2026-01-01T00:00:00+00:00|": no id
    ],
)
async def test_a_cursor_the_api_did_not_return_is_a_422_that_names_the_cursor(
    api: Harness, cursor: str
) -> None:
    await quest_by(api, await new_player(api))

    response = await api.client.get(QUESTS, params={"cursor": cursor})

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert names_the_field(response, "cursor"), response.text


# -- completing a quest ------------------------------------------------------------------------


async def complete(
    api: Harness, quest: dict[str, object], player: Player, key: str | None = None
) -> httpx.Response:
    headers = dict(player.auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.client.post(f"{QUESTS}/{quest['id']}/complete", headers=headers)


async def test_completing_a_quest_records_it_for_that_player_with_the_quests_points(
    api: Harness,
) -> None:
    quest = await quest_by(api, await new_player(api), points=42)
    player = await new_player(api)

    response = await complete(api, quest, player)

    assert response.status_code == 201, response.text
    completion = response.json()
    assert completion["quest_id"] == quest["id"]
    assert completion["user_id"] == player.id
    assert completion["points"] == 42
    assert completion["id"] and completion["completed_at"]


async def test_completing_the_same_quest_again_is_a_409_and_earns_nothing_more(
    any_db_api: Harness,
) -> None:
    api = any_db_api
    quest = await quest_by(api, await new_player(api))
    player = await new_player(api)
    assert (await complete(api, quest, player)).status_code == 201

    again = await complete(api, quest, player)

    assert again.status_code == 409, again.text
    assert again.json()["error"] == "conflict"
    assert "already" in again.json()["message"]


async def test_a_completion_retried_with_its_idempotency_key_answers_the_same_completion(
    api: Harness,
) -> None:
    quest = await quest_by(api, await new_player(api))
    player = await new_player(api)
    first = await complete(api, quest, player, key="complete-once")

    retried = await complete(api, quest, player, key="complete-once")

    assert (first.status_code, retried.status_code) == (201, 201), retried.text
    assert retried.json() == first.json()  # the same completion, not a second one
    assert (await complete(api, quest, player, key="another-key")).status_code == 409


async def test_each_player_completes_a_quest_for_themselves(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api), points=3)
    first, second = await new_player(api), await new_player(api)

    one = await complete(api, quest, first)
    two = await complete(api, quest, second)

    assert (one.status_code, two.status_code) == (201, 201), two.text
    assert (one.json()["user_id"], two.json()["user_id"]) == (first.id, second.id)
    assert one.json()["id"] != two.json()["id"]
    assert one.json()["points"] == two.json()["points"] == 3


async def test_completing_an_unknown_quest_is_a_404(api: Harness) -> None:
    player = await new_player(api)

    response = await complete(api, {"id": str(uuid.uuid4())}, player)

    assert response.status_code == 404, response.text


@pytest.mark.parametrize("key", [None, "complete-gone"], ids=["no-key", "idempotency-key"])
async def test_a_quest_deleted_after_the_completion_read_it_is_a_404_not_a_409(
    any_db_api: Harness, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """The completion reads the quest, then inserts; a delete committed in between makes the
    insert break the foreign key, which is "no such quest", not "completed already"."""
    api = any_db_api
    author, player = await new_player(api), await new_player(api)
    quest = await quest_by(api, author)
    read = AsyncSession.get
    deletes: list[int] = []

    async def read_then_lose_the_race(
        session: AsyncSession, entity: Any, ident: Any, **options: Any
    ) -> Any:
        found = await read(session, entity, ident, **options)
        if entity is Quest and ident == quest["id"] and not deletes:
            # The author's delete, a request of its own, lands after the read.
            gone = await api.client.delete(f"{QUESTS}/{quest['id']}", headers=author.auth)
            deletes.append(gone.status_code)
        return found

    monkeypatch.setattr(AsyncSession, "get", read_then_lose_the_race)

    response = await complete(api, quest, player, key=key)

    assert deletes == [204], "the race did not happen: the test proves nothing"
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    monkeypatch.undo()
    retried = await complete(api, quest, player, key=key)  # nothing was recorded under the key
    assert retried.status_code == 404, retried.text


async def test_completing_a_quest_needs_a_player_token(api: Harness) -> None:
    quest = await quest_by(api, await new_player(api))
    path = f"{QUESTS}/{quest['id']}/complete"

    anonymous = await api.client.post(path)
    operator = await api.client.post(path, headers=staff(api, Role.OPERATOR))

    assert anonymous.status_code == 401, anonymous.text
    assert operator.status_code == 403, operator.text  # staff have no account to earn points
