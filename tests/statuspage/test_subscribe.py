"""Subscribing on the status page, through the ASGI app over a real SQLite store: the form, the
request (one subscriber row and one confirmation owed, the same answer whoever is asking), the
bounds (per client, pending, sizes, types), and the signed confirm and unsubscribe links."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.public import tokens
from monitor.public.settings import PublicSettings, SubscriptionSettings
from statuspage.cli import ConfigError, page_config
from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import API, CATALOGUE, NOW

SECRET_ENV = "QUESTCITY_TEST_SUBSCRIPTION_SECRET"
SECRET = "a-long-enough-secret-for-signing-links-0123456789"
FORM = {"content-type": "application/x-www-form-urlencoded"}
SAME = "If this address can be subscribed, a confirmation is on its way."


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def settings(**options: Any) -> PublicSettings:
    chosen = {"enabled": True, "secret_env": SECRET_ENV, **options}
    return PublicSettings(subscriptions=SubscriptionSettings(**chosen))


Open = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def app(store: Store, client: Client, monkeypatch: pytest.MonkeyPatch) -> tuple[Open, Clock]:
    """``open(**settings)``: the page over a store with the scenarios' catalogue, subscriptions
    on with a secret, on a clock the test moves."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    await store.writer.sync_components(CATALOGUE)
    clock = Clock()

    def open_app(**options: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return client(settings=settings(**options), clock=clock)

    return open_app, clock


def rows(store: Store, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store.url.removeprefix("sqlite:///")) as db:
        return db.execute(query).fetchall()


async def form_token(http: httpx.AsyncClient) -> str:
    """The token ``GET /subscribe`` put in the form for this client."""
    found = re.search(
        r'name="form_token" value="([0-9a-f.]+)"', (await http.get("/subscribe")).text
    )
    assert found is not None
    return found.group(1)


async def subscribe(
    http: httpx.AsyncClient, address: str, /, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    """The form posted as a browser does: with the token the page gave it."""
    data = {"kind": "email", "address": address, "form_token": await form_token(http), **fields}
    return await http.post("/subscribe", data=data, headers=headers)


async def test_subscriptions_off_or_without_a_secret_are_not_there(
    store: Store, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.writer.sync_components(CATALOGUE)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    for chosen in (PublicSettings(), settings()):  # off; on without the secret
        async with client(settings=chosen) as http:
            form = await http.get("/subscribe")
            posted = await http.post("/subscribe", data={"address": "player@example.org"})
            page = await http.get("/")
            link = await http.get("/subscriptions/confirm?token=confirm.1.0.x")
        assert form.status_code == posted.status_code == link.status_code == 404
        assert page.status_code == 200 and 'href="/subscribe' not in page.text  # no dead link
    assert rows(store, "SELECT count(*) FROM subscribers") == [(0,)]


async def test_the_form_offers_the_components_in_the_page_language(
    app: tuple[Open, Clock],
) -> None:
    open_app, _ = app
    async with open_app() as http:
        english = await http.get("/subscribe")
        russian = await http.get("/subscribe", headers={"accept-language": "ru-RU,ru;q=0.9"})
        index = await http.get("/")
        webhooks_only = None
    async with open_app(email=False) as http:
        webhooks_only = await http.get("/subscribe")
    assert english.status_code == 200
    assert 'href="/subscribe?lang=en"' in index.text
    csp = english.headers["content-security-policy"]
    assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    assert english.headers["cache-control"] == "no-store"
    page = english.text
    assert '<form method="post" action="/subscribe?lang=en"' in page
    for key in (API, f"{API}/s3", f"{API}/database", "questcity-eu"):
        assert f'name="component" value="{key}"' in page
    assert 'value="en" selected' in page and 'value="webhook"' in page
    assert '<html lang="ru"' in russian.text and 'value="ru" selected' in russian.text
    assert 'value="webhook"' in webhooks_only.text and 'value="email"' not in webhooks_only.text


async def test_a_request_writes_a_subscriber_and_owes_one_confirmation(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, clock = app
    async with open_app() as http:
        first = await subscribe(
            http, " Player@Example.ORG ", component=[f"{API}/s3", API], language="ru"
        )
        clock.now += 60
        again = await subscribe(http, "player@example.org")  # within resend_after
    assert first.status_code == again.status_code == 200
    assert SAME in first.text and first.text == again.text
    # One row (the domain lower-cased), its choices those of the latest request.
    query = "SELECT kind, address, components, language, confirmed_at FROM subscribers"
    assert rows(store, query) == [("email", "Player@example.org", "[]", "en", None)]
    assert rows(store, "SELECT message_id, state, next_at FROM deliveries") == [
        (None, "pending", NOW)
    ]


async def test_the_subscriber_keeps_the_chosen_components_and_language(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        answer = await subscribe(
            http, "player@example.org", component=[f"{API}/s3", API], language="ru"
        )
    assert answer.status_code == 200
    assert rows(store, "SELECT address, components, language FROM subscribers") == [
        ("player@example.org", f'["{API}/s3","{API}"]', "ru")
    ]


async def test_a_confirmed_address_gets_the_same_answer_and_nothing_sent(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, clock = app
    async with open_app() as http:
        new = await subscribe(http, "player@example.org")
        with sqlite3.connect(store.url.removeprefix("sqlite:///")) as db:
            db.execute("UPDATE subscribers SET confirmed_at = ?", (NOW,))
        clock.now += 7200  # past resend_after: an unconfirmed one would be sent another
        confirmed = await subscribe(http, "player@example.org")
        stranger = await subscribe(http, "stranger@example.org")
    assert new.status_code == confirmed.status_code == stranger.status_code == 200
    assert new.text == confirmed.text == stranger.text
    assert "To change the components or the language, unsubscribe" in new.text
    assert rows(store, "SELECT count(*) FROM deliveries") == [(2,)]  # player's first, stranger's


async def test_one_client_is_limited_per_hour(store: Store, app: tuple[Open, Clock]) -> None:
    open_app, clock = app
    async with open_app(per_client_per_hour=2) as http:
        answers = [await subscribe(http, f"p{n}@example.org") for n in range(3)]
        clock.now += 3600
        later = await subscribe(http, "p3@example.org")
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "3600"
    assert "Too many requests" in answers[2].text
    assert later.status_code == 200
    assert rows(store, "SELECT address FROM subscribers ORDER BY id") == [
        ("p0@example.org",),
        ("p1@example.org",),
        ("p3@example.org",),
    ]


async def test_too_many_waiting_is_refused(store: Store, app: tuple[Open, Clock]) -> None:
    open_app, _ = app
    async with open_app(max_pending=2) as http:
        answers = [await subscribe(http, f"p{n}@example.org") for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "3600"
    assert "waiting to be confirmed" in answers[2].text
    assert rows(store, "SELECT count(*) FROM subscribers") == [(2,)]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"address": "not-an-address"}, "Enter an e-mail address like name@example.org."),
        ({"address": "a" * 250 + "@example.org"}, "too long (at most 254 characters)"),
        ({"address": "x@localhost"}, "domain of the e-mail address is not valid"),
        ({"address": "<script>@example.org"}, "characters an e-mail address cannot have"),
        ({"address": ""}, "Enter where to send the messages."),
        ({"kind": "webhook", "address": "ftp://example.org/x"}, "must start with http://"),
        ({"kind": "webhook", "address": "https://u:p@example.org/"}, "user name or password"),
        ({"kind": "webhook", "address": "https://example.org/" + "a" * 2000}, "too long"),
        ({"kind": "webhook", "address": "http://127.0.0.1:8080/hook"}, "local or private"),
        ({"kind": "webhook", "address": "http://[::1]/hook"}, "local or private"),
        ({"kind": "webhook", "address": "http://hooks.example.org:25/x"}, "port is not allowed"),
        ({"kind": "webhook", "address": "https://hooks.example.org:1023/"}, "port is not allowed"),
        ({"kind": "pigeon", "address": "x@example.org"}, "Choose e-mail or webhook."),
        ({"component": "questcity-api/nope"}, "not on this page"),
        ({"component": [f"c{n}" for n in range(51)]}, "at most 50 components"),
        ({"language": "de"}, "Choose one of the languages offered."),
    ],
)
async def test_what_is_wrong_is_said_and_nothing_written(
    fields: dict[str, Any], reason: str, store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        answer = await subscribe(http, "p@example.org", **fields)
    assert answer.status_code == 400
    assert reason in answer.text
    assert "<script>@" not in answer.text  # what was typed comes back escaped
    assert rows(store, "SELECT count(*) FROM subscribers") == [(0,)]


async def test_webhooks_off_refuse_a_webhook(store: Store, app: tuple[Open, Clock]) -> None:
    open_app, _ = app
    async with open_app(webhooks=False) as http:
        answer = await subscribe(http, "https://hooks.example.org/x", kind="webhook")
    assert answer.status_code == 400
    assert "does not take webhook subscriptions" in answer.text
    assert rows(store, "SELECT count(*) FROM subscribers") == [(0,)]


async def test_bodies_are_bounded_and_only_forms_are_read(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        padded = "kind=email&address=p%40example.org&pad=" + "x" * 9000
        oversize = await http.post("/subscribe", content=padded, headers=FORM)

        async def trickle() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
            yield b"kind=email&address=p%40example.org&pad="
            for _ in range(20):
                yield b"x" * 1000

        streamed = await http.post("/subscribe", content=trickle(), headers=FORM)
        as_json = await http.post("/subscribe", json={"address": "p@example.org"})
        no_type = await http.post("/subscribe", content=b"address=p%40example.org")
        bad_bytes = await http.post("/subscribe", content=b"address=%ff%fe", headers=FORM)
        twice = await http.post(
            "/subscribe", content=b"address=a%40example.org&address=b%40example.org", headers=FORM
        )
    assert oversize.status_code == streamed.status_code == 413
    assert "too large (at most 8 KiB)" in oversize.text
    assert as_json.status_code == no_type.status_code == 415
    assert "application/x-www-form-urlencoded" in as_json.text
    assert bad_bytes.status_code == twice.status_code == 400
    assert rows(store, "SELECT count(*) FROM subscribers") == [(0,)]


async def test_other_methods_are_405_with_allow(app: tuple[Open, Clock]) -> None:
    open_app, _ = app
    async with open_app() as http:
        put = await http.put("/subscribe")
        delete = await http.delete("/subscriptions/unsubscribe")
        root = await http.post("/")
    assert put.status_code == delete.status_code == 405
    assert put.headers["allow"] == delete.headers["allow"] == "GET, HEAD, POST"
    assert root.headers["allow"] == "GET, HEAD"


async def _subscriber(http: httpx.AsyncClient, store: Store, address: str, **fields: Any) -> int:
    assert (await subscribe(http, address, **fields)).status_code == 200
    return int(rows(store, "SELECT max(id) FROM subscribers")[0][0])


def state(store: Store, subscriber_id: int) -> tuple[Any, Any]:
    return rows(
        store, f"SELECT confirmed_at, unsubscribed_at FROM subscribers WHERE id = {subscriber_id}"
    )[0]


async def test_an_email_is_confirmed_by_the_button_not_by_the_link(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, clock = app
    async with open_app() as http:
        sid = await _subscriber(http, store, "player@example.org")
        token = tokens.mint(
            SECRET.encode(), tokens.CONFIRM, sid, "player@example.org", expires_at=NOW + 3600
        )
        shown = await http.get(f"/subscriptions/confirm?token={token}")
        assert state(store, sid) == (None, None)  # a link scanner's fetch confirms nothing
        clock.now += 10
        pressed = await http.post("/subscriptions/confirm", data={"token": token})
        again = await http.post("/subscriptions/confirm", data={"token": token})
    assert shown.status_code == 200 and "Confirm subscription" in shown.text
    assert f'name="token" value="{token}"' in shown.text
    assert "form-action 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert pressed.status_code == again.status_code == 200
    assert "Subscription confirmed" in pressed.text
    assert state(store, sid) == (NOW + 10, None)  # the second press kept the first time


async def test_a_webhook_is_confirmed_by_fetching_its_confirm_url(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        url = "https://hooks.example.org/questcity?x=1"
        sid = await _subscriber(http, store, url, kind="webhook")
        token = tokens.mint(SECRET.encode(), tokens.CONFIRM, sid, url, expires_at=NOW + 60)
        head = await http.head(f"/subscriptions/confirm?token={token}")
        assert state(store, sid) == (None, None)
        fetched = await http.get(f"/subscriptions/confirm?token={token}")
    assert fetched.status_code == 200 and "Subscription confirmed" in fetched.text
    assert head.status_code == 200
    assert state(store, sid) == (NOW, None)


async def test_tampered_expired_and_foreign_links_are_refused(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, clock = app
    key = SECRET.encode()
    async with open_app() as http:
        sid = await _subscriber(http, store, "player@example.org")
        other = await _subscriber(http, store, "other@example.org")
        good = tokens.mint(key, tokens.CONFIRM, sid, "player@example.org", expires_at=NOW + 60)
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        foreign = good.replace(f".{sid}.", f".{other}.")  # one subscriber's MAC on another's id
        wrong_key = tokens.mint(b"x" * 40, tokens.CONFIRM, sid, "player@example.org")
        unsubscribe_as_confirm = tokens.mint(key, tokens.UNSUBSCRIBE, sid, "player@example.org")
        refused = [
            await http.post("/subscriptions/confirm", data={"token": t})
            for t in (tampered, foreign, wrong_key, unsubscribe_as_confirm, "", "x" * 500)
        ]
        clock.now = NOW + 61
        expired = await http.post("/subscriptions/confirm", data={"token": good})
    assert [r.status_code for r in refused] == [400] * 6
    assert all("This link does not work" in r.text for r in refused)
    assert "subscribe again" in refused[0].text
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert state(store, sid) == (None, None) and state(store, other) == (None, None)


async def test_one_click_unsubscribe(store: Store, app: tuple[Open, Clock]) -> None:
    open_app, clock = app
    key = SECRET.encode()
    async with open_app() as http:
        email = await _subscriber(http, store, "player@example.org")
        hook = await _subscriber(http, store, "https://hooks.example.org/q", kind="webhook")
        by_mail = tokens.mint(key, tokens.UNSUBSCRIBE, email, "player@example.org")
        by_hook = tokens.mint(key, tokens.UNSUBSCRIBE, hook, "https://hooks.example.org/q")
        shown = await http.get(f"/subscriptions/unsubscribe?token={by_mail}")
        assert state(store, email) == (None, None)
        clock.now += 5
        one_click = await http.post(
            f"/subscriptions/unsubscribe?token={by_mail}",
            content=b"List-Unsubscribe=One-Click",
            headers=FORM,
        )
        multipart = await http.post(
            f"/subscriptions/unsubscribe?token={by_hook}",
            files={"List-Unsubscribe": (None, "One-Click")},
        )
        clock.now += 5
        again = await http.post(f"/subscriptions/unsubscribe?token={by_mail}", headers=FORM)
        resubscribed = await subscribe(http, "player@example.org")
    assert shown.status_code == 200 and 'action="/subscriptions/unsubscribe?lang=en"' in shown.text
    assert one_click.status_code == multipart.status_code == again.status_code == 200
    assert "You are unsubscribed" in one_click.text
    assert state(store, email) == (None, NOW + 5) and state(store, hook) == (None, NOW + 5)
    assert rows(store, f"SELECT state, error FROM deliveries WHERE subscriber_id = {email}") == [
        ("failed", "unsubscribed")
    ]
    assert resubscribed.status_code == 200  # a new row: the old one stays unsubscribed
    assert rows(store, "SELECT count(*) FROM subscribers WHERE address_key IS NOT NULL") == [(1,)]


async def test_a_store_that_fails_is_a_503_page(store: Store, app: tuple[Open, Clock]) -> None:
    open_app, _ = app
    async with open_app() as http:
        with sqlite3.connect(store.url.removeprefix("sqlite:///")) as db:
            db.execute("DROP TABLE deliveries")
        answer = await subscribe(http, "player@example.org")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "30"
    assert "could not be taken right now" in answer.text
    assert "Traceback" not in answer.text and "deliveries" not in answer.text


def test_the_command_reads_page_and_subscriptions_from_monitor_toml(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        '[storage]\nurl = "sqlite:///./var/x.db"\n\n'
        '[page]\nurl = "https://status.example.org/"\nname = "Квест"\n'
        'timezone = "Europe/Moscow"\n\n'
        "[subscriptions]\nenabled = true\nemail = false\nper_client_per_hour = 3\n"
    )
    read = page_config(config)
    assert read.storage_url == "sqlite:///./var/x.db"
    assert read.page_url == "https://status.example.org"
    assert read.public.page.name == "Квест" and read.public.page.timezone == "Europe/Moscow"
    assert read.public.subscriptions.enabled and read.public.subscriptions.per_client_per_hour == 3
    config.write_text('[storage]\nurl = "sqlite:///./var/x.db"\n')
    assert page_config(config).page_url is None  # served at http://HOST:PORT then
    config.write_text("[subscriptions]\nenabled = true\n")  # e-mail without [smtp]
    with pytest.raises(ConfigError, match=r"subscriptions\.email"):
        page_config(config)


async def test_unsubscribe_links_work_after_subscriptions_are_turned_off(
    store: Store, app: tuple[Open, Clock]
) -> None:
    open_app, _ = app
    async with open_app() as http:
        sid = await _subscriber(http, store, "player@example.org")
    token = tokens.mint(SECRET.encode(), tokens.UNSUBSCRIBE, sid, "player@example.org")
    async with open_app(enabled=False) as http:
        form = await http.get("/subscribe")
        left = await http.post(f"/subscriptions/unsubscribe?token={token}", headers=FORM)
    assert form.status_code == 404
    assert left.status_code == 200 and "You are unsubscribed" in left.text
    assert "Subscribe again" not in left.text  # (there is nowhere to subscribe now)
    assert state(store, sid) == (None, NOW)
