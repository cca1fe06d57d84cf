"""People, not a shared password, in the browser TUI (issue #14).

Each test runs the real server app (textual-serve's routes behind the guard) on a loopback port
and opens tabs over its websocket. The command it spawns per tab is a stand-in for the TUI that
speaks textual-serve's protocol just enough to send back its own environment, so the tests see
exactly what a tab's TUI process would be started with: ``QUESTCITY_TUI_TAB_USER`` and
``QUESTCITY_TUI_TAB_ROLE`` from the session, never the server's own values, never the password.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.tui import serve_guard, users
from monitor.tui.identity import TAB_ROLE_ENV, TAB_USER_ENV, Identity, Role
from monitor.tui.serve import PASSWORD_ENV, ServeOptions, ServeRefused, TuiServer, check_people
from monitor.tui.serve_guard import COOKIE, Credentials, Guard, trusted_networks
from monitor.tui.users import UsersFile, hash_password, set_user
from tests.support.polling import eventually

Client = TestClient[web.Request, web.Application]
WATCHED = (TAB_USER_ENV, TAB_ROLE_ENV, PASSWORD_ENV)
TAB = f"""
import json, os, sys
out = sys.stdout.buffer
out.write(b"__GANGLION__\\n")
def packet(kind, payload):
    out.write(kind + len(payload).to_bytes(4, "big") + payload)
packet(b"D", json.dumps({{k: os.environ.get(k) for k in {WATCHED!r}}}).encode())
if os.environ.get("STAY_OPEN"):
    out.flush()
    sys.stdin.buffer.read(1)  # until the server sends anything (its "quit" on closing)
packet(b"M", json.dumps({{"type": "exit"}}).encode())
out.flush()
"""
"""A stand-in TUI: sends its identity variables as one data packet, then exits."""


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(autouse=True)
def server_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's own environment says someone else: no tab may inherit it."""
    monkeypatch.setenv(TAB_USER_ENV, "server-user")
    monkeypatch.setenv(TAB_ROLE_ENV, "admin")
    monkeypatch.setenv(PASSWORD_ENV, "the server's password")
    monkeypatch.delenv("STAY_OPEN", raising=False)
    for name, value in (("SCRYPT_N", 16), ("SCRYPT_R", 1), ("SCRYPT_P", 1)):
        monkeypatch.setattr(users, name, value)  # the dummy hash for unknown names: cheap too


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "tui-users.toml"
    accounts = {
        "alice": users.Account("alice", Role.OPERATOR, cheap("alice password")),
        "bob": users.Account("bob", Role.VIEWER, cheap("bob password")),
        "dana@example.org": users.Account("dana@example.org", Role.OPERATOR),  # header only
    }
    users.write_users(path, accounts)
    return path


def cheap(password: str) -> str:
    return hash_password(password, n=16, r=1, p=1)


Serve = Callable[[Guard], Awaitable[Client]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    script = tmp_path / "tab.py"
    script.write_text(TAB)
    clients: list[Client] = []

    async def start(guard: Guard) -> Client:
        server = TuiServer(
            ServeOptions(tmp_path / "monitor.toml"),
            guard=guard,
            command=shlex.join([sys.executable, str(script)]),
        )
        client: Client = TestClient(TestServer(await server._make_app(), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def tab_environment(client: Client, headers: dict[str, str]) -> dict[str, str | None]:
    """What the tab's process was started with, as it reported it."""
    async with client.ws_connect("/ws", headers=headers) as websocket:
        message = await asyncio.wait_for(websocket.receive(), 30)
    assert message.type is aiohttp.WSMsgType.BINARY, message
    reported: dict[str, str | None] = json.loads(message.data)
    return reported


# -- a users file ----------------------------------------------------------------------------------


async def test_each_user_signs_in_as_themselves_and_their_tab_gets_their_name_and_role(
    serve: Serve, users_file: Path
) -> None:
    client = await serve(Guard(None, users=UsersFile(users_file)))

    alice = await tab_environment(client, basic("alice", "alice password"))
    bob = await tab_environment(client, basic("bob", "bob password"))

    assert alice == {TAB_USER_ENV: "alice", TAB_ROLE_ENV: "operator", PASSWORD_ENV: None}
    assert bob == {TAB_USER_ENV: "bob", TAB_ROLE_ENV: "viewer", PASSWORD_ENV: None}  # read only
    assert Identity.from_environ({k: v for k, v in bob.items() if v}) == Identity(
        "bob", Role.VIEWER
    )


async def test_wrong_passwords_unknown_names_and_header_only_users_are_refused(
    serve: Serve, users_file: Path
) -> None:
    client = await serve(Guard(None, users=UsersFile(users_file)))
    for user, password in [
        ("alice", "bob password"),
        ("mallory", "alice password"),
        ("dana@example.org", ""),  # no password: signs in through the proxy only
        ("", ""),
    ]:
        response = await client.get("/ws", headers=basic(user, password))
        assert response.status == 401, (user, response.status)


async def test_the_session_cookie_carries_the_user_to_the_tab(
    serve: Serve, users_file: Path
) -> None:
    client = await serve(Guard(None, users=UsersFile(users_file)))
    page = await client.get("/", headers=basic("alice", "alice password"))
    assert page.status == 200
    session = {"Cookie": f"{COOKIE}={page.cookies[COOKIE].value}"}
    client.session.cookie_jar.clear()

    assert (await tab_environment(client, session))[TAB_USER_ENV] == "alice"


async def test_a_removed_user_is_signed_out_at_the_next_request_and_their_open_tab_closes(
    serve: Serve, users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = Guard(None, users=UsersFile(users_file))
    client = await serve(guard)
    page = await client.get("/", headers=basic("bob", "bob password"))
    session = {"Cookie": f"{COOKIE}={page.cookies[COOKIE].value}"}
    client.session.cookie_jar.clear()
    monkeypatch.setenv("STAY_OPEN", "1")
    async with client.ws_connect("/ws", headers=session) as websocket:
        first = await asyncio.wait_for(websocket.receive(), 30)
        assert json.loads(first.data)[TAB_USER_ENV] == "bob"

        users.remove_user(users_file, "bob")
        guard.refresh()  # what the next request, or the server's watch, does

        notice = await asyncio.wait_for(websocket.receive(), 30)
        assert b"Signed out" in notice.data
        closed = await asyncio.wait_for(websocket.receive(), 30)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert closed.data == 4401, (closed, websocket.close_code)
    assert (await client.get("/", headers=session)).status == 401


async def test_a_new_password_ends_the_old_sessions_and_a_new_role_applies_to_new_tabs(
    serve: Serve, users_file: Path
) -> None:
    client = await serve(Guard(None, users=UsersFile(users_file)))
    page = await client.get("/", headers=basic("alice", "alice password"))
    session = {"Cookie": f"{COOKIE}={page.cookies[COOKIE].value}"}
    client.session.cookie_jar.clear()

    set_user(users_file, "alice", Role.ADMIN, None)  # role changed, password gone: header only
    assert (await client.get("/", headers=session)).status == 401

    accounts = users.load_users(users_file)
    accounts["alice"] = users.Account("alice", Role.VIEWER, cheap("alice's new password"))
    users.write_users(users_file, accounts)
    assert (await client.get("/", headers=basic("alice", "alice password"))).status == 401
    fresh = await tab_environment(client, basic("alice", "alice's new password"))
    assert fresh[TAB_ROLE_ENV] == "viewer"


def break_file(path: Path) -> None:
    path.write_text('[users.alice]\nrole = "root"\n')


async def test_a_broken_users_file_signs_everyone_out(serve: Serve, users_file: Path) -> None:
    client = await serve(Guard(None, users=UsersFile(users_file)))
    break_file(users_file)
    response = await client.get("/", headers=basic("alice", "alice password"))
    assert response.status == 503
    assert "users file cannot be read" in await response.text()
    assert "root" not in await response.text()  # where it is wrong goes to the log only


# -- the single password (existing deployments) ----------------------------------------------------


async def test_the_single_password_is_one_admin_named_by_the_setting(serve: Serve) -> None:
    client = await serve(Guard(Credentials("ops", "correct horse")))
    tab = await tab_environment(client, basic("ops", "correct horse"))
    assert tab == {TAB_USER_ENV: "ops", TAB_ROLE_ENV: "admin", PASSWORD_ENV: None}


async def test_without_authentication_a_loopback_tab_is_this_machines_user(serve: Serve) -> None:
    client = await serve(Guard(None))
    tab = await tab_environment(client, {})
    # Neither the server's user nor its role: the tab is the local account, as in a terminal.
    assert tab == {TAB_USER_ENV: None, TAB_ROLE_ENV: None, PASSWORD_ENV: None}


# -- a trusted proxy's header ----------------------------------------------------------------------


def header_guard(users_file: Path | None, proxies: str) -> Guard:
    return Guard(
        None,
        users=UsersFile(users_file) if users_file else None,
        trusted_header="X-Forwarded-User",
        trusted_proxies=trusted_networks([proxies]),
    )


async def test_a_trusted_proxys_header_names_the_user_with_their_role_or_the_default(
    serve: Serve, users_file: Path
) -> None:
    client = await serve(header_guard(users_file, "127.0.0.1"))  # the test client is the proxy

    listed = await tab_environment(client, {"X-Forwarded-User": "dana@example.org"})
    unlisted = await tab_environment(client, {"X-Forwarded-User": "erin"})

    assert listed == {
        TAB_USER_ENV: "dana@example.org",
        TAB_ROLE_ENV: "operator",
        PASSWORD_ENV: None,
    }
    assert unlisted == {TAB_USER_ENV: "erin", TAB_ROLE_ENV: "viewer", PASSWORD_ENV: None}


async def test_the_header_from_any_other_peer_is_refused_not_read_as_anyone(
    serve: Serve, users_file: Path
) -> None:
    client = await serve(header_guard(users_file, "10.0.0.0/8"))  # the proxy is elsewhere

    for path in ("/", "/ws"):
        response = await client.get(path, headers={"X-Forwarded-User": "alice"})
        assert response.status == 403, path
        assert "believed only from the authenticating proxy" in await response.text()
    # A password still works from anywhere; without either, it is a 401 as ever.
    assert (await tab_environment(client, basic("bob", "bob password")))[TAB_USER_ENV] == "bob"
    assert (await client.get("/")).status == 401


@pytest.mark.parametrize("value", ["al ice", "alice:admin", "x" * 101, ""])
async def test_a_header_that_does_not_name_one_user_is_refused(serve: Serve, value: str) -> None:
    client = await serve(header_guard(None, "127.0.0.1"))
    response = await client.get("/", headers={"X-Forwarded-User": value})
    assert response.status == 403


async def test_a_header_mode_server_needs_the_proxys_address(tmp_path: Path) -> None:
    options = ServeOptions(tmp_path / "monitor.toml", trusted_header="X-Forwarded-User")
    with pytest.raises(ServeRefused, match="name its address in \\[tui\\] trusted_proxies"):
        check_people(options)


async def test_a_header_only_server_does_not_ask_for_a_password(serve: Serve) -> None:
    client = await serve(header_guard(None, "127.0.0.1"))
    response = await client.get("/")
    assert response.status == 403  # not a Basic challenge for a password nobody has
    assert "WWW-Authenticate" not in response.headers
    assert "through its authenticating proxy" in await response.text()


async def test_guesses_sent_all_at_once_are_bounded_not_queued(
    serve: Serve, users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def slow_verify(password: str, encoded: str) -> bool:
        started.release()
        release.wait(30)
        return False

    monkeypatch.setattr(serve_guard, "verify_password", slow_verify)
    guard = Guard(None, users=UsersFile(users_file))
    client = await serve(guard)
    guesses = [
        asyncio.ensure_future(client.get("/", headers=basic("alice", f"guess {n}")))
        for n in range(serve_guard.MAX_WAITING)
    ]
    for _ in range(serve_guard.MAX_HASHING):  # the first checks are running
        assert await asyncio.to_thread(started.acquire, True, 30)

    async def all_waiting() -> bool:  # every guess has reached the guard (a state, not a timer)
        return guard._waiting == serve_guard.MAX_WAITING

    await eventually(all_waiting, "every guess waiting at the guard", within=30, every=0.01)
    one_more = await client.get("/", headers=basic("alice", "one more"))
    assert one_more.status == 503
    assert one_more.headers["Retry-After"] == "5"
    release.set()
    assert [(await guess).status for guess in guesses] == [401] * serve_guard.MAX_WAITING
