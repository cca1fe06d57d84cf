"""The browser TUI's login under guessing (#11): it took 4,000 guesses a second on main.

Delays run on an injected clock; nothing sleeps.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.tui.login_throttle import (
    CLIENT_CEILING,
    CLIENT_FREE,
    USER_CEILING,
    USER_FREE,
    LoginThrottle,
    Policy,
)
from monitor.tui.serve_guard import COOKIE, Credentials, Guard

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


def test_guesses_from_many_addresses_slow_the_user_but_never_lock_it_out() -> None:
    clock = Clock()
    throttle = LoginThrottle("oncall", clock=clock)
    for n in range(10_000):  # a botnet: each address under the per-client free guesses
        throttle.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", "oncall")
    # The real user, from an address of its own: at most USER_CEILING seconds to wait.
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
