"""Only the page's own form subscribes: ``POST /subscribe`` sent by another site (the browser's
``Sec-Fetch-Site`` or ``Origin``) is refused, and one without the signed, timed form token
``GET /subscribe`` gave this client re-shows the form; neither writes anything."""

from __future__ import annotations

import pytest

from statuspage.form import FORM_TOKEN_FOR, cross_site, form_token_valid, mint_form_token
from tests.statuspage.conftest import PUBLIC_URL, Store
from tests.statuspage.scenarios import NOW
from tests.statuspage.test_subscribe import (
    SAME,
    SECRET,
    Clock,
    Open,
    app,
    form_token,
    rows,
    subscribe,
)

__all__ = ["app"]  # the fixture, shared with test_subscribe

KEY = SECRET.encode()


def written(store: Store) -> int:
    return int(rows(store, "SELECT count(*) FROM subscribers")[0][0])


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # a sibling subdomain is another site's page
        {"sec-fetch-site": "cross-site", "origin": PUBLIC_URL},  # Sec-Fetch-Site decides
        {"origin": "https://evil.example"},
        {"origin": "http://status.questcity.test.evil.example"},
        {"origin": "not a url"},
    ],
)
async def test_a_post_from_another_site_is_refused(
    headers: dict[str, str], store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        answer = await subscribe(http, "victim@example.org", headers=headers)
    assert answer.status_code == 403
    assert "Request refused" in answer.text and "send the form from there" in answer.text
    assert written(store) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin", "origin": "null"},  # our no-referrer page's POST
        {"sec-fetch-site": "none"},
        {"origin": PUBLIC_URL},
        {"origin": "HTTPS://Status.QuestCity.test:443"},
        {"origin": "http://status.example.net:8080", "host": "status.example.net:8080"},
        {"origin": "null"},  # the token decides
        {},  # an old browser: the token decides
    ],
)
async def test_the_pages_own_form_is_taken(
    headers: dict[str, str], store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        answer = await subscribe(http, "player@example.org", headers=headers)
    assert answer.status_code == 200 and SAME in answer.text
    assert written(store) == 1


async def test_a_post_without_a_good_form_token_shows_the_form_again(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, clock = app
    data = {"kind": "email", "address": "victim@example.org"}
    async with open_app() as http:
        fresh = await form_token(http)
        expires, _, mac = fresh.partition(".")
        elsewhere = mint_form_token(KEY, "203.0.113.9", NOW)  # fetched by another client
        refused = [
            await http.post("/subscribe", data=data),
            await http.post("/subscribe", data={**data, "form_token": ""}),
            await http.post("/subscribe", data={**data, "form_token": f"{expires}.{mac[::-1]}"}),
            await http.post("/subscribe", data={**data, "form_token": f"{int(expires) + 1}.{mac}"}),
            await http.post("/subscribe", data={**data, "form_token": elsewhere}),
        ]
        clock.now += FORM_TOKEN_FOR + 1
        expired = await http.post("/subscribe", data={**data, "form_token": fresh})
        assert written(store) == 0
        again = await subscribe(http, "victim@example.org")  # from the form shown again
    for answer in (*refused, expired):
        assert answer.status_code == 403
        assert "The form was open too long or was not sent from this page" in answer.text
        assert 'value="victim@example.org"' in answer.text  # what was typed, to send again
        assert 'name="form_token" value="' in answer.text
    assert again.status_code == 200 and written(store) == 1


def test_form_tokens_are_bound_to_client_secret_and_time() -> None:
    token = mint_form_token(KEY, "198.51.100.7", NOW)
    assert form_token_valid(KEY, token, "198.51.100.7", NOW + FORM_TOKEN_FOR)
    assert not form_token_valid(KEY, token, "198.51.100.7", NOW + FORM_TOKEN_FOR + 1)
    assert not form_token_valid(KEY, token, "198.51.100.8", NOW)
    assert not form_token_valid(b"another-secret" * 3, token, "198.51.100.7", NOW)
    future = mint_form_token(KEY, "198.51.100.7", NOW + 3 * FORM_TOKEN_FOR)
    assert not form_token_valid(KEY, future, "198.51.100.7", NOW)  # never longer than one life
    for broken in (None, "", ".", "x.y", "1" * 13 + ".ab", token + "0"):
        assert not form_token_valid(KEY, broken, "198.51.100.7", NOW)


def test_cross_site_reads_the_browsers_headers() -> None:
    page = "https://status.example.org"
    assert not cross_site({}, page)
    assert cross_site({"sec-fetch-site": "cross-site"}, page)
    assert not cross_site({"origin": "https://status.example.org"}, page)
    assert cross_site({"origin": "http://status.example.org"}, page)  # another origin
    assert not cross_site({"origin": "https://other.example", "host": "other.example"}, page)
    assert cross_site({"origin": "https://other.example", "host": "status.example.org"}, page)
    assert cross_site({"origin": "https://status.example.org:8443"}, page)
