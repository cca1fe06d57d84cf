"""``questcity tui --serve``: who may bind where, and the guard in front of textual-serve."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from monitor.tui import cli
from monitor.tui.serve import (
    PASSWORD_ENV,
    ServeOptions,
    ServeRefused,
    TuiServer,
    check_bind,
    credentials_from,
    is_loopback,
    tui_command,
)
from monitor.tui.serve_guard import (
    COOKIE,
    DEVICE_COOKIE,
    DEVICE_SECONDS,
    SESSION_SECONDS,
    Credentials,
    Guard,
    trusted_networks,
)

CREDENTIALS = Credentials("oncall", "correct horse")
Client = TestClient[web.Request, web.Application]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- where it may listen ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_need_no_password(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "monitor.example.org"])
def test_other_addresses_are_refused_without_a_password(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ServeRefused, match=PASSWORD_ENV) as refused:
        check_bind(host, None)
    assert f"refusing to serve the on-call TUI on {host}" in str(refused.value)
    check_bind(host, CREDENTIALS)  # with authentication it may


def test_credentials_come_from_the_environment() -> None:
    assert credentials_from({}) is None
    assert credentials_from({PASSWORD_ENV: "pw"}) == Credentials("oncall", "pw")
    named = credentials_from({PASSWORD_ENV: "pw", "QUESTCITY_TUI_USER": "ops"})
    assert named == Credentials("ops", "pw")
    assert "pw" not in repr(named)


def test_the_command_refuses_a_public_address_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[[targets]]\nname = "api"\nurl = "http://127.0.0.1:8000"\n')
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    code = cli.main(["--config", str(config), "--serve", "--host", "0.0.0.0"])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("questcity tui: refusing to serve the on-call TUI on 0.0.0.0")
    assert PASSWORD_ENV in error


def test_serve_options_need_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(tmp_path / "monitor.toml"), "--port", "9000"]) == 2
    assert "--port only apply with --serve" in capsys.readouterr().err


def test_a_bad_config_is_reported_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--config", str(tmp_path / "missing.toml"), "--serve"]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_each_tab_runs_this_tui_on_the_same_config(tmp_path: Path) -> None:
    command = tui_command(tmp_path / "my config.toml")
    assert command.endswith(f"-m monitor.tui --config '{tmp_path / 'my config.toml'}'")


# -- the guard -------------------------------------------------------------------------------------


async def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="tui")


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[Guard], Client]]:
    started: list[Client] = []

    def make(guard: Guard) -> Client:
        app = web.Application(middlewares=[guard.middleware()])
        app.router.add_get("/", ok)
        app.router.add_get("/ws", ok)
        client: Client = TestClient(TestServer(app, host="127.0.0.1"))
        started.append(client)
        return client

    yield make
    for client in started:
        await client.close()


async def test_without_a_password_only_loopback_hosts_are_answered(
    clients: Callable[[Guard], Client],
) -> None:
    client = clients(Guard(None))
    await client.start_server()
    assert (await client.get("/")).status == 200
    assert (await client.get("/", headers={"Host": "localhost:8081"})).status == 200
    rebound = await client.get("/", headers={"Host": "attacker.example:8081"})
    assert rebound.status == 403


async def test_the_public_url_host_is_answered(clients: Callable[[Guard], Client]) -> None:
    client = clients(Guard(None, public_url="https://ops.example.org/tui"))
    await client.start_server()
    assert (await client.get("/", headers={"Host": "ops.example.org"})).status == 200


async def test_a_websocket_from_another_site_is_refused(
    clients: Callable[[Guard], Client],
) -> None:
    client = clients(Guard(None))
    await client.start_server()
    host = f"127.0.0.1:{client.port}"
    same = await client.get("/ws", headers={"Origin": f"http://{host}"})
    assert same.status == 200
    other = await client.get("/ws", headers={"Origin": "https://evil.example"})
    assert other.status == 403
    assert "Cross-origin" in await other.text()


async def test_with_a_password_every_request_needs_it(
    clients: Callable[[Guard], Client],
) -> None:
    client = clients(Guard(CREDENTIALS))
    await client.start_server()
    anonymous = await client.get("/")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('Basic realm="QuestCity on-call TUI"')
    wrong = await client.get("/", headers={"Authorization": basic("oncall", "wrong")})
    assert wrong.status == 401
    garbage = await client.get("/", headers={"Authorization": "Basic !!!"})
    assert garbage.status == 401
    assert (await client.get("/ws")).status == 401


async def test_basic_auth_gives_a_session_cookie_for_the_websocket(
    clients: Callable[[Guard], Client],
) -> None:
    now = [1_700_000_000.0]
    client = clients(Guard(CREDENTIALS, wall=lambda: now[0]))
    await client.start_server()
    page = await client.get("/", headers={"Authorization": basic("oncall", "correct horse")})
    assert page.status == 200
    cookie = page.cookies[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    device = page.cookies[DEVICE_COOKIE]  # the browser is known from now on
    assert device["httponly"]
    assert device["samesite"] == "Strict"
    assert device["max-age"] == str(DEVICE_SECONDS)
    assert not device["secure"]  # plain http on loopback: the browser would drop it
    client.session.cookie_jar.clear()

    session = {"Cookie": f"{COOKIE}={cookie.value}"}
    assert (await client.get("/ws", headers=session)).status == 200
    last = "1" if cookie.value.endswith("0") else "0"  # a different last character, always
    forged = {"Cookie": f"{COOKIE}={cookie.value[:-1]}{last}"}
    assert (await client.get("/ws", headers=forged)).status == 401
    now[0] += SESSION_SECONDS + 1
    assert (await client.get("/ws", headers=session)).status == 401


async def test_the_cookie_is_secure_behind_https(clients: Callable[[Guard], Client]) -> None:
    client = clients(Guard(CREDENTIALS, public_url="https://ops.example.org/tui"))
    await client.start_server()
    page = await client.get("/", headers={"Authorization": basic("oncall", "correct horse")})
    assert page.status == 200
    assert page.cookies[COOKIE]["secure"]
    assert page.cookies[DEVICE_COOKIE]["secure"]


@pytest.mark.parametrize("value", ["1.é", "9999999999.é", "²." + "0" * 64, "é", "..", "1-2.3"])
async def test_a_garbled_session_cookie_is_a_401_never_a_500(
    clients: Callable[[Guard], Client], value: str
) -> None:
    client = clients(Guard(CREDENTIALS))
    await client.start_server()
    response = await client.get("/ws", headers={"Cookie": f"{COOKIE}={value}"})
    assert response.status == 401  # on main: 500 for a signature that is not ASCII


# -- the client behind a reverse proxy -------------------------------------------------------------


async def statuses(client: Client, forwarded: list[str], password: str = "wrong") -> list[int]:
    result = []
    for entry in forwarded:
        headers = {"Authorization": basic("oncall", password), "X-Forwarded-For": entry}
        result.append((await client.get("/", headers=headers)).status)
    return result


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    clients: Callable[[Guard], Client],
) -> None:
    # The proxy is elsewhere: the test client (127.0.0.1) writes X-Forwarded-For itself.
    client = clients(Guard(CREDENTIALS, trusted_proxies=trusted_networks(["10.0.0.0/8"])))
    await client.start_server()
    spoofed = [f"203.0.113.{n}" for n in range(10)]
    assert await statuses(client, spoofed) == [401] * 5 + [429] * 5


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(
    clients: Callable[[Guard], Client],
) -> None:
    proxies = trusted_networks(["127.0.0.1", "10.0.0.0/8"])
    client = clients(Guard(CREDENTIALS, trusted_proxies=proxies))
    await client.start_server()
    assert await statuses(client, ["203.0.113.1"] * 6) == [401] * 5 + [429]
    # What the guesser writes itself is left of what the proxies append: it changes nothing.
    spoofed = [f"198.51.100.{n}, 203.0.113.1" for n in range(3)]
    assert await statuses(client, spoofed) == [429] * 3
    assert await statuses(client, ["203.0.113.1, 10.1.2.3"]) == [429]  # through two proxies
    # Everyone else behind the same proxy is not locked out (on main: 429 for all for 300 s).
    assert await statuses(client, ["203.0.113.2"], password="correct horse") == [200]


def request_from(peer: str, *forwarded: str) -> web.Request:
    headers = [("X-Forwarded-For", value) for value in forwarded]
    return make_mocked_request("GET", "/", headers=headers).clone(remote=peer)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # not a proxy: its header is ignored
        ("10.0.0.2", [], "10.0.0.2"),  # a proxy that sent none: the proxy itself
        ("10.0.0.2", ["198.51.100.1, 203.0.113.1"], "203.0.113.1"),
        ("10.0.0.2", ["198.51.100.1", "203.0.113.1, 10.0.0.3"], "203.0.113.1"),  # two headers
        ("10.0.0.2", ["203.0.113.1:5555"], "203.0.113.1"),  # a port some proxies append
        ("10.0.0.2", ["[2001:db8::0:1]:443"], "2001:db8::1"),
        ("10.0.0.2", ["198.51.100.1, unknown"], "10.0.0.2"),  # not an address: stop there
        ("10.0.0.2", ["10.0.0.9, 10.0.0.3"], "10.0.0.9"),  # proxies all the way
    ],
)
def test_the_client_address(peer: str, forwarded: list[str], client: str) -> None:
    guard = Guard(CREDENTIALS, trusted_proxies=trusted_networks(["10.0.0.0/24"]))
    assert guard.client_address(request_from(peer, *forwarded)) == client


def test_trusted_proxies_repeat_or_come_as_a_comma_list() -> None:
    networks = trusted_networks(["127.0.0.1, ::1", "10.0.0.0/8"])
    assert [str(network) for network in networks] == ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]
    with pytest.raises(ValueError, match=r"--trusted-proxy 'proxy\.example': give the reverse"):
        trusted_networks(["127.0.0.1,proxy.example"])


def test_the_command_refuses_a_bad_trusted_proxy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[[targets]]\nname = "api"\nurl = "http://127.0.0.1:8000"\n')
    assert cli.main(["--config", str(config), "--serve", "--trusted-proxy", "10.0.0.300"]) == 2
    assert "--trusted-proxy '10.0.0.300': give the reverse proxy's" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "--trusted-proxy", "10.0.0.1"]) == 2
    assert "--trusted-proxy only apply with --serve" in capsys.readouterr().err


def test_the_command_names_a_damaged_salt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[[targets]]\nname = "api"\nurl = "http://127.0.0.1:8000"\n')
    (tmp_path / "var" / "tui").mkdir(parents=True)
    (tmp_path / "var" / "tui" / "device-salt").write_text("garbage\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "correct horse")
    assert cli.main(["--config", str(config), "--serve"]) == 2
    error = capsys.readouterr().err
    assert "device-salt: not a device-cookie salt" in error
    assert "correct horse" not in error


async def test_the_served_page_points_at_the_public_url(tmp_path: Path) -> None:
    server = TuiServer(
        ServeOptions(tmp_path / "monitor.toml", public_url="https://ops.example.org/tui/")
    )
    app = await server._make_app()
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        page = await client.get("/", headers={"Host": "ops.example.org"})
        html = await page.text()
    finally:
        await client.close()
    assert page.status == 200
    assert 'data-session-websocket-url="wss://ops.example.org/tui/ws"' in html
    assert 'href="https://ops.example.org/tui/static/css/xterm.css"' in html
