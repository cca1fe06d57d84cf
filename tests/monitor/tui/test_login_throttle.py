"""The browser TUI's login under guessing (#11): it took 4,000 guesses a second on main.

Delays run on an injected clock; nothing sleeps.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from monitor.tui.login_throttle import (
    CLIENT_CEILING,
    CLIENT_FREE,
    USER_CEILING,
    USER_FREE,
    LoginThrottle,
    Policy,
)
from monitor.tui.serve_guard import (
    COOKIE,
    DEVICE_COOKIE,
    DEVICE_SECONDS,
    Credentials,
    Guard,
    device_secret,
    trusted_networks,
)

CREDENTIALS = Credentials("oncall", "correct horse")
Client = TestClient[web.Request, web.Application]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- the policy ------------------------------------------------------------------------------------


def test_delays_grow_after_the_free_guesses_up_to_a_ceiling() -> None:
    policy = Policy(free=3, base=1.0, ceiling=10.0)
    assert [policy.delay(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 10, 10]
    assert policy.delay(10**9) == 10.0  # no overflow however long the flood


def test_a_client_waits_longer_after_each_wrong_guess() -> None:
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    waits = []
    for _ in range(CLIENT_FREE + 4):
        assert throttle.retry_after("10.0.0.1", "oncall") == 0
        throttle.failed("10.0.0.1", "oncall")
        waits.append(throttle.retry_after("10.0.0.1", "oncall"))
        clock.now += waits[-1]
    assert waits == [0] * (CLIENT_FREE - 1) + [1, 2, 4, 8, 16]


def test_the_client_ceiling_and_a_right_password_clears_the_client() -> None:
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    for _ in range(40):
        throttle.failed("10.0.0.1", "nobody")
    assert throttle.retry_after("10.0.0.1", "nobody") == CLIENT_CEILING
    clock.now += CLIENT_CEILING
    throttle.succeeded("10.0.0.1", "nobody")
    throttle.failed("10.0.0.1", "nobody")
    assert throttle.retry_after("10.0.0.1", "nobody") == 0


def botnet(n: int) -> str:
    """The ``n``th address of a botnet of 10,000 (each stays under the per-client free guesses
    in an hour of polling every 100 ms)."""
    n %= 10_000
    return f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"


def test_a_known_browser_logs_in_every_time_during_an_hour_long_flood() -> None:
    """The review's case: a botnet polling the user's slot every 100 ms for an hour left the owner
    0 successful tries out of 360 (one every 10 s). With a device cookie, 360 out of 360."""
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    known = unknown = tries = 0
    for tick in range(36_000):  # an hour, every 100 ms
        clock.now = 1000.0 + tick / 10
        address = botnet(tick)
        if throttle.retry_after(address, "oncall") == 0:  # the bot asks first, each time
            throttle.failed(address, "oncall")
        if tick % 100 == 50:  # the owner, every 10 s
            tries += 1
            if throttle.retry_after("192.168.1.5", "oncall", device="owner-laptop") == 0:
                known += 1
                throttle.succeeded("192.168.1.5", "oncall", device="owner-laptop")
            if throttle.retry_after("192.168.1.6", "oncall") == 0:
                unknown += 1
                throttle.succeeded("192.168.1.6", "oncall")
    assert tries == 360
    assert known == 360
    # The flood is real: a browser never seen before got no try at all (the module says so).
    assert unknown == 0


def test_a_known_browser_is_slowed_by_its_own_wrong_passwords_only() -> None:
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    for _ in range(CLIENT_FREE + 3):  # someone with a stolen device cookie but no password
        throttle.failed("10.0.0.1", "oncall", device="stolen")
    assert throttle.retry_after("10.0.0.1", "oncall", device="stolen") == 8  # as a client's
    # That cookie's guesses are its own: the address, the user and other devices are not slowed.
    assert throttle.retry_after("10.0.0.1", "oncall") == 0
    assert throttle.retry_after("10.0.0.1", "oncall", device="owner-laptop") == 0
    clock.now += 8
    throttle.succeeded("10.0.0.1", "oncall", device="stolen")
    assert throttle.retry_after("10.0.0.1", "oncall", device="stolen") == 0


def test_a_known_browser_skips_its_address_limit() -> None:
    """Behind a NAT or a proxy shared with a guesser, the owner's known browser still gets in."""
    throttle = LoginThrottle("oncall", clock=Clock())
    for _ in range(50):
        throttle.failed("203.0.113.9", "oncall")
    assert throttle.retry_after("203.0.113.9", "oncall") > 0
    assert throttle.retry_after("203.0.113.9", "oncall", device="owner-laptop") == 0


def test_guesses_from_many_addresses_slow_the_user_and_never_reach_other_names() -> None:
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    for n in range(10_000):  # a botnet: each address under the per-client free guesses
        throttle.failed(botnet(n), "oncall")
    # Once the flood stops, a new browser waits at most USER_CEILING seconds.
    assert 0 < throttle.retry_after("192.168.1.5", "oncall") <= USER_CEILING
    clock.now += USER_CEILING
    assert throttle.retry_after("192.168.1.5", "oncall") == 0
    # Guesses at other names do not slow the real user at all.
    other = LoginThrottle("oncall", clock=clock)
    for n in range(USER_FREE * 10):
        other.failed(f"10.1.0.{n % 200}", "admin")
    assert other.retry_after("192.168.1.5", "oncall") == 0


def test_memory_is_bounded_by_the_number_of_client_records() -> None:
    throttle = LoginThrottle("oncall", clock=Clock(), max_clients=100)
    for n in range(5000):
        throttle.failed(f"client-{n}", f"user-{n}")
    assert len(throttle) == 100
    assert len(throttle._users) == 1  # every name but the configured one is "other"
    devices = LoginThrottle("oncall", clock=Clock(), max_devices=10)
    for n in range(5000):
        devices.failed("10.0.0.1", "oncall", device=f"device-{n}")
    assert len(devices._devices) == 10


def test_old_failures_are_forgotten() -> None:
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    for _ in range(CLIENT_FREE + 2):
        throttle.failed("10.0.0.1", "oncall")
    clock.now += 3601
    throttle.failed("10.0.0.1", "oncall")
    assert throttle.retry_after("10.0.0.1", "oncall") == 0


# -- through the guard ---------------------------------------------------------------------------


async def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="tui")


@pytest.fixture
async def guarded() -> AsyncIterator[tuple[Client, Clock]]:
    clock = Clock()
    guard = Guard(CREDENTIALS, clock=clock)
    app = web.Application(middlewares=[guard.middleware()])
    app.router.add_get("/", ok)
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client, clock
    await client.close()


async def test_guessing_gets_429_with_retry_after_and_the_password_is_not_checked(
    guarded: tuple[Client, Clock],
) -> None:
    client, clock = guarded
    statuses = [
        (await client.get("/", headers=basic("oncall", f"guess {n}"))).status
        for n in range(CLIENT_FREE + 1)
    ]
    assert statuses == [401] * CLIENT_FREE + [429]
    # Blocked: even the right password is not looked at until the wait is over.
    early = await client.get("/", headers=basic("oncall", "correct horse"))
    assert early.status == 429
    assert early.headers["Retry-After"] == "1"  # the fifth wrong guess began the waits
    assert "try again in 1 s" in await early.text()
    clock.now += 1
    right = await client.get("/", headers=basic("oncall", "correct horse"))
    assert right.status == 200


async def test_a_logged_in_browser_is_never_throttled(guarded: tuple[Client, Clock]) -> None:
    client, _ = guarded
    page = await client.get("/", headers=basic("oncall", "correct horse"))
    session = {"Cookie": f"{COOKIE}={page.cookies[COOKIE].value}"}
    client.session.cookie_jar.clear()
    for n in range(50):  # someone guessing from the same address
        await client.get("/", headers=basic("oncall", f"guess {n}"))
    assert (await client.get("/", headers=basic("oncall", "x"))).status == 429
    assert (await client.get("/", headers=session)).status == 200


async def test_a_thousand_guesses_cost_the_attacker_minutes(
    guarded: tuple[Client, Clock],
) -> None:
    client, _ = guarded
    checked = 0
    for n in range(1000):
        response = await client.get("/", headers=basic("oncall", f"guess {n}"))
        checked += response.status == 401
    assert checked == CLIENT_FREE  # on main: all 1000 were checked at once


# -- device cookies, through the guard ------------------------------------------------------------


BEHIND_PROXY = trusted_networks(["127.0.0.1"])  # the test client plays the reverse proxy


@pytest.fixture
async def served() -> AsyncIterator[Callable[[Guard], Awaitable[Client]]]:
    started: list[Client] = []

    async def serve(guard: Guard) -> Client:
        app = web.Application(middlewares=[guard.middleware()])
        app.router.add_get("/", ok)
        # No cookie jar: each request carries exactly the cookies the test gives it.
        client: Client = TestClient(TestServer(app, host="127.0.0.1"), cookie_jar=DummyCookieJar())
        await client.start_server()
        started.append(client)
        return client

    yield serve
    for client in started:
        await client.close()


def login(user: str, password: str, address: str, device: str | None = None) -> dict[str, str]:
    headers = {**basic(user, password), "X-Forwarded-For": address}
    if device is not None:
        headers["Cookie"] = f"{DEVICE_COOKIE}={device}"
    return headers


async def test_the_owner_with_a_device_cookie_logs_in_during_a_flood(
    served: Callable[[Guard], Awaitable[Client]],
) -> None:
    clock = Clock()
    client = await served(Guard(CREDENTIALS, clock=clock, trusted_proxies=BEHIND_PROXY))
    last_week = await client.get("/", headers=login("oncall", "correct horse", "192.168.1.5"))
    assert last_week.status == 200
    device = last_week.cookies[DEVICE_COOKIE].value
    owner, new_browser = [], []
    for tick in range(6000):  # ten minutes of a botnet guessing every 100 ms, through the proxy
        clock.now = 1000.0 + tick / 10
        await client.get("/", headers=login("oncall", f"guess {tick}", botnet(tick)))
        if tick % 100 == 50:  # the owner's session has expired: it logs in again, every 10 s
            known = await client.get(
                "/", headers=login("oncall", "correct horse", "192.168.1.5", device)
            )
            owner.append(known.status)
            device = known.cookies[DEVICE_COOKIE].value  # renewed at each login
            unseen = await client.get("/", headers=login("oncall", "correct horse", "192.168.1.6"))
            new_browser.append(unseen.status)
    assert owner == [200] * 60  # on main: 429 every time
    assert set(new_browser) == {429}  # a browser never seen before waits for the flood to end


async def test_a_bad_device_cookie_gives_no_bypass_and_never_a_500(
    served: Callable[[Guard], Awaitable[Client]],
) -> None:
    wall = Clock()
    wall.now = 1_700_000_000.0
    guard = Guard(CREDENTIALS, wall=wall, clock=Clock())
    client = await served(guard)
    page = await client.get("/", headers=basic("oncall", "correct horse"))
    device = page.cookies[DEVICE_COOKIE].value
    for n in range(CLIENT_FREE):  # someone at the same address has been guessing
        await client.get("/", headers=basic("oncall", f"guess {n}"))
    payload, _, signature = device.rpartition(".")
    expires, _, nonce = payload.partition("-")
    other_server = Guard(CREDENTIALS, wall=wall).device_cookie()
    other_user = Guard(
        Credentials("admin", "correct horse"), device_secret=guard.device_secret, wall=wall
    ).device_cookie()
    bad = {
        "forged signature": f"{payload}.{signature[:-1]}{'1' if signature[-1] == '0' else '0'}",
        "forged expiry": f"{int(expires) + DEVICE_SECONDS}-{nonce}.{signature}",
        "another server's": other_server,
        "another user's": other_user,
        "the session cookie": page.cookies[COOKIE].value,
        "non-ASCII signature": f"{payload}.{'é' * len(signature)}",
        "non-ASCII digits": f"²-{nonce}.{signature}",
        "empty": "",
        "no signature": payload,
    }
    for what, value in bad.items():
        response = await client.get(
            "/", headers={**basic("oncall", "correct horse"), "Cookie": f"{DEVICE_COOKIE}={value}"}
        )
        assert response.status == 429, what
    wall.now += DEVICE_SECONDS  # expired
    expired = {**basic("oncall", "correct horse"), "Cookie": f"{DEVICE_COOKIE}={device}"}
    assert (await client.get("/", headers=expired)).status == 429
    wall.now -= 1  # the last second it is valid: the same cookie gets in
    assert (await client.get("/", headers=expired)).status == 200


async def test_a_device_cookie_is_for_its_user_only(
    served: Callable[[Guard], Awaitable[Client]],
) -> None:
    client = await served(Guard(CREDENTIALS, clock=Clock()))
    device = (
        (await client.get("/", headers=basic("oncall", "correct horse")))
        .cookies[DEVICE_COOKIE]
        .value
    )
    cookie = {"Cookie": f"{DEVICE_COOKIE}={device}"}
    # Guessing at other names with the owner's cookie is throttled as any client's guessing.
    statuses = [
        (await client.get("/", headers={**basic("admin", f"guess {n}"), **cookie})).status
        for n in range(CLIENT_FREE + 1)
    ]
    assert statuses == [401] * CLIENT_FREE + [429]
    assert (
        await client.get("/", headers={**basic("oncall", "correct horse"), **cookie})
    ).status == 200


async def test_device_cookies_outlive_a_restart_but_not_a_new_password(
    served: Callable[[Guard], Awaitable[Client]], tmp_path: Path
) -> None:
    secret = device_secret(CREDENTIALS, tmp_path, iterations=1000)
    salt = tmp_path / "device-salt"
    assert salt.stat().st_mode & 0o777 == 0o600
    before = await served(Guard(CREDENTIALS, device_secret=secret, clock=Clock()))
    device = (
        (await before.get("/", headers=basic("oncall", "correct horse")))
        .cookies[DEVICE_COOKIE]
        .value
    )

    async def known_after_restart(credentials: Credentials) -> bool:
        again = device_secret(credentials, tmp_path, iterations=1000)
        client = await served(Guard(credentials, device_secret=again, clock=Clock()))
        for n in range(CLIENT_FREE):
            await client.get("/", headers=basic("oncall", f"guess {n}"))
        headers = {**basic("oncall", credentials.password), "Cookie": f"{DEVICE_COOKIE}={device}"}
        return (await client.get("/", headers=headers)).status == 200

    assert await known_after_restart(CREDENTIALS)
    assert not await known_after_restart(Credentials("oncall", "a new password"))


def test_a_damaged_salt_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "device-salt").write_text("not a salt\n")
    with pytest.raises(ValueError, match=r"device-salt: not a device-cookie salt.*delete it"):
        device_secret(CREDENTIALS, tmp_path, iterations=1000)
