"""The API's models against the document built from them, and the refusals clients read.

- What the document says of a field (``maxLength``, ``pattern``) is exactly what the server
  accepts: drawn text is accepted by the model if and only if the document allows it. Text is
  measured as sent, so a title of more than 200 characters is refused even when trimming would
  bring it under (it used to be trimmed first, and the document's ``maxLength`` was not the rule).
- The username rule and the cursor format are in the document.
- Refusals keep the sentences clients have always read, field by field.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from backend.api.models.accounts import Credentials, NewAccount
from backend.api.models.base import Request
from backend.api.models.fields import SPACES
from backend.api.models.quests import NewQuest, QuestPatch, QuestQuery
from backend.api.openapi import openapi_document
from backend.api.validation import validated
from backend.app import routes
from backend.auth.usernames import check_new_username
from backend.domain import CURSOR_MAX, TITLE_MAX, Cursor, InvalidInput
from backend.settings import Settings
from tests.backend.integration.conftest import running

SETTINGS = hypothesis.settings(max_examples=300, derandomize=True, deadline=None, database=None)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(routes())


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _allowed(field: dict[str, Any], value: str) -> bool:
    """What the document says of ``value`` as this field: type string assumed."""
    if len(value) > field.get("maxLength", len(value)) or len(value) < field.get("minLength", 0):
        return False
    return re.search(field.get("pattern", ""), value) is not None


def _accepted(model: type[Request], body: dict[str, Any], name: str) -> bool:
    try:
        validated(model, body)
    except InvalidInput as error:
        return name not in error.errors
    return True


# Text near the edges: whitespace of every kind, NUL, letters of several scripts, marks.
_TEXT = st.text(
    st.one_of(
        st.sampled_from(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2000\u3000\ufeff\x00_-.!"),
        st.sampled_from("aZé東кαß1٣\u0301\u200b\ufdfa"),
        st.characters(codec="utf-8"),
    ),
    max_size=TITLE_MAX + 8,
)
_FIELD_CASES = [
    ("NewQuest", NewQuest, {"city": "Riga", "points": 1}, "title"),
    ("NewQuest", NewQuest, {"title": "t", "points": 1}, "city"),
    ("NewQuest", NewQuest, {"title": "t", "city": "c", "points": 1}, "description"),
    ("Credentials", Credentials, {"password": "correct horse"}, "username"),
]


@pytest.mark.parametrize(("component", "model", "rest", "name"), _FIELD_CASES)
@SETTINGS
@hypothesis.given(value=_TEXT)
def test_the_document_says_exactly_what_a_field_accepts(
    document: dict[str, Any],
    component: str,
    model: type[Request],
    rest: dict[str, Any],
    name: str,
    value: str,
) -> None:
    field = _schema(document, component)["properties"][name]
    assert _accepted(model, {**rest, name: value}, name) == _allowed(field, value), repr(value)


@SETTINGS
@hypothesis.given(value=_TEXT)
def test_a_new_name_the_document_refuses_the_server_refuses(
    document: dict[str, Any], value: str
) -> None:
    """The pattern says which characters a new name may hold; one script, marks after letters and
    the length once NFKC-normalised are said in words, so the server may refuse more."""
    field = _schema(document, "NewAccount")["properties"]["username"]
    body = {"username": value, "password": "correct horse"}
    if not _allowed(field, value):
        assert not _accepted(NewAccount, body, "username"), repr(value)
    elif _accepted(Credentials, body, "username"):
        assert _accepted(NewAccount, body, "username") == (
            check_new_username(value.strip()) is None
        ), repr(value)


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("alice", True),
        ("  Ålice_2.b-c  ", True),
        ("東京タワ", True),
        ("ａｌｉｃｅ", True),  # fullwidth: NFKC makes it plain Latin
        ("_alice", False),
        ("al ice", False),
        ("alice!", False),
        ("al\u200bice", False),  # invisible
        ("", False),
    ],
)
def test_the_username_rule_is_in_the_document(
    document: dict[str, Any], name: str, allowed: bool
) -> None:
    field = _schema(document, "NewAccount")["properties"]["username"]
    assert _allowed(field, name) is allowed
    assert (check_new_username(name.strip()) is None) is allowed


def test_the_cursor_format_is_in_the_document(document: dict[str, Any]) -> None:
    (cursor,) = [
        p for p in document["paths"]["/api/v1/quests"]["get"]["parameters"] if p["name"] == "cursor"
    ]
    made = Cursor(datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC), "x" * 36).encode()
    assert _allowed(cursor["schema"], made)
    assert cursor["schema"]["maxLength"] == CURSOR_MAX
    for other in ("abc=", "a b", "a/b", "a+b", "é"):
        assert not _allowed(cursor["schema"], other)
        with pytest.raises(InvalidInput) as refused:
            validated(QuestQuery, {"cursor": other})
        assert refused.value.errors == {"cursor": "is not a cursor this API returned"}


_SURROGATE = "\ud800"
_NOT_STORABLE = "must be text without NUL characters or unpaired surrogates"


@pytest.mark.parametrize(
    ("model", "body", "fields"),
    [
        (NewQuest, {}, {"title": "is required", "city": "is required", "points": "is required"}),
        (
            NewQuest,
            {"title": 5, "city": "  ", "points": "5", "colour": "red"},
            {
                "colour": "is not a field of a quest",
                "title": "must be a string",
                "city": "must not be empty",
                "points": "must be a whole number",
            },
        ),
        (
            NewQuest,
            {"title": "a\x00b", "city": f"c{_SURROGATE}", "points": 10_001},
            {
                "title": _NOT_STORABLE,
                "city": _NOT_STORABLE,
                "points": "must be between 1 and 10000",
            },
        ),
        (
            NewQuest,
            {"title": "t" * (TITLE_MAX - 1) + "  ", "city": "c", "points": 5.5},
            {"title": "must be at most 200 characters", "points": "must be a whole number"},
        ),
        (QuestPatch, {}, {"body": "name at least one of title, description, city, points"}),
        (QuestPatch, {"title": None}, {"title": "must be a string"}),
        (
            QuestQuery,
            {"limit": "x", "city": "K" * 101},
            {"limit": "must be a whole number", "city": "must be at most 100 characters"},
        ),
        (QuestQuery, {"limit": "9" * 5000}, {"limit": "must be between 1 and 100"}),
        (QuestQuery, {"limit": "0"}, {"limit": "must be between 1 and 100"}),
        (
            Credentials,
            {"username": "  ", "password": ""},
            {
                "username": "is required and must be a non-empty string",
                "password": "is required and must be a non-empty string",
            },
        ),
        (
            Credentials,
            {"username": "a\x07b", "password": "p" * 1025},
            {
                "username": "must be printable and at most 64 characters",
                "password": "must be at most 1024 characters",
            },
        ),
    ],
)
def test_refusals_keep_their_sentences(
    model: type[Request], body: dict[str, Any], fields: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        validated(model, body)
    assert refused.value.errors == fields


def test_accepted_values_are_trimmed_and_whole() -> None:
    quest = validated(NewQuest, {"title": "  A quest ", "city": "\tRiga\n", "points": 5.0})
    assert quest.domain() == type(quest.domain())("A quest", "", "Riga", 5)
    patch = validated(QuestPatch, {"city": " Tartu "}).domain()
    assert (patch.title, patch.city) == (None, "Tartu")
    query = validated(QuestQuery, {"limit": "", "city": " ", "cursor": ""})
    assert (query.limit, query.city, query.cursor) == (20, "", "")
    assert validated(Credentials, {"username": " alice ", "password": " p "}).username == "alice"


async def test_a_title_longer_than_the_limit_as_sent_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'questcity.db'}", keys_dir=tmp_path / "keys"
    )
    async with running(settings, "") as api:
        padded = " " + "t" * TITLE_MAX + " "
        body = {"title": padded, "city": "Riga", "points": 5}
        response = await api.client.post("/api/v1/quests", json=body, headers=api.auth())
        assert response.status_code == 422, response.text
        assert response.json() == {
            "error": "invalid_request",
            "message": "Some fields are not valid.",
            "fields": {"title": f"must be at most {TITLE_MAX} characters"},
        }
        body["title"] = padded[1:-1]
        created = await api.client.post("/api/v1/quests", json=body, headers=api.auth())
        assert created.status_code == 201, created.text
        assert created.json()["title"] == "t" * TITLE_MAX


def test_the_spaces_are_what_strip_trims() -> None:
    assert [c for c in range(sys.maxunicode + 1) if chr(c).isspace()] == list(SPACES)
