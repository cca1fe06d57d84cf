"""Logins under attack, on SQLite and on a real PostgreSQL.

On main before #11: a client could guess passwords as fast as scrypt ran (36 guesses/s slowed
real logins to 2.9 s on PostgreSQL; on SQLite the flood pushed everything to 503), any password
of one character was accepted, and ``alice``, ``ALICE``, ``ａlice`` and ``аlice`` (Cyrillic а)
were four accounts.

The backend runs in-process with its own lifespan; requests go through httpx's ASGI transport,
which lets each client have its own address (what the per-client throttle counts by) without a
network. Time is the app's injected clock, jumped forward instead of waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from backend.app import create_app
from backend.auth import passwords
from backend.auth.passwords import HashingSlots, hash_password
from backend.db import migrate
from backend.server import build_server
from backend.settings import Settings
from tests.support import PostgresServer
from tests.support.clock import SkewClock
from tests.support.polling import eventually
from tests.support.ports import free_port

OWNER = "198.51.100.20"
ATTACKER = "203.0.113.7"
PASSWORD = "correct horse battery"
TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"


@dataclass
class Backend:
    app: Starlette
    clock: SkewClock
    hashes: list[str]
    """One entry per password verification the backend ran (scrypt work)."""

    @contextlib.asynccontextmanager
    async def client(self, address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://questcity.test") as c:
            yield c


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/questcity.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"qc_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    url: str = server.url_for(database=name)
    return url


@pytest.fixture
def counted_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = passwords.verify_password

    def counting(password: str, stored: str | None) -> bool:
        calls.append(password)
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return calls


@contextlib.asynccontextmanager
async def running(database_url: str, tmp_path: Path, hashes: list[str]) -> AsyncIterator[Backend]:
    settings = Settings(database_url=database_url, keys_dir=tmp_path / "keys", health_interval=0.2)
    clock = SkewClock()
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        backend = Backend(app, clock, hashes)
        async with backend.client(OWNER) as client:

            async def ready() -> bool:
                return (await client.get("/api/v1/health/ready")).status_code == 200

            await eventually(ready, what="backend ready")
        yield backend


@pytest.fixture
async def backend(
    database_url: str, tmp_path: Path, counted_hashes: list[str]
) -> AsyncIterator[Backend]:
    async with running(database_url, tmp_path, counted_hashes) as backend:
        yield backend


async def register(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    response = await client.post(REGISTER, json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, json={"username": username, "password": password})


def subject(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    sub: str = claims["sub"]
    return sub


async def guess_until_refused(client: httpx.AsyncClient, username: str) -> httpx.Response:
    for n in range(100):
        response = await login(client, username, f"guess number {n}")
        if response.status_code == 429:
            return response
        assert response.status_code == 401, response.text
    raise AssertionError("100 wrong guesses and never a 429")


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    seconds = int(response.headers["Retry-After"])
    assert body["error"] == "too_many_attempts"
    assert body["retry_after"] == seconds
    assert f"Try again in {seconds} second" in body["message"]
    return seconds


async def test_a_guessing_flood_gets_429s_with_growing_retry_after(backend: Backend) -> None:
    async with backend.client(OWNER) as owner:
        await register(owner, "alice")
    async with backend.client(ATTACKER) as attacker:
        first = await guess_until_refused(attacker, "alice")
        waits = [retry_after(first)]
        for _ in range(4):
            backend.clock.jump(waits[-1])
            assert (await login(attacker, "alice", "one more guess")).status_code == 401
            waits.append(retry_after(await login(attacker, "alice", "and another")))
        assert waits == sorted(waits) and waits[-1] >= 8 * waits[0], waits

        # Refused guesses are answered before any password is hashed.
        hashed = len(backend.hashes)
        for n in range(50):
            assert (await login(attacker, "alice", f"flood {n}")).status_code == 429
        assert len(backend.hashes) == hashed


async def test_the_owner_still_logs_in_during_a_flood_against_their_account(
    backend: Backend,
) -> None:
    async with backend.client(OWNER) as owner:
        user_id = await register(owner, "alice")
        assert subject(await login(owner, "alice", PASSWORD)) == user_id  # a device cookie now
        device_cookie = dict(owner.cookies)

    # A botnet: 40 addresses, three guesses each, all at alice.
    statuses = []
    for bot in range(40):
        async with backend.client(f"10.66.{bot}.1") as bot_client:
            for n in range(3):
                statuses.append((await login(bot_client, "ALICE", f"bot guess {n}")).status_code)
    assert 429 in statuses
    assert statuses.count(401) <= 15, statuses  # the account's limit, not 120 guesses

    async with backend.client("192.0.2.99") as stranger:
        refused = await login(stranger, "alice", PASSWORD)
        assert retry_after(refused) >= 1
        assert "has logged in to it before can still log in" in refused.json()["message"]

    async with backend.client(OWNER) as owner:
        for _ in range(3):
            assert subject(await login(owner, "alice", PASSWORD)) == user_id
    # The same device from another network (a phone leaving the office Wi-Fi): its cookie.
    async with backend.client("192.0.2.123") as travelling:
        travelling.cookies.update(device_cookie)
        assert subject(await login(travelling, "alice", PASSWORD)) == user_id


@pytest.mark.parametrize(
    "cookie",
    [
        "v1.{now}.abc.\xe9",  # non-ASCII signature: a 500 before (TypeError in compare_digest)
        "v1.{now}.\xe9\xe9.def",
        "v1.{now}..",
        "v1...",
        "v9.{now}.abc.def",
        "v1.{now}." + "A" * 4000 + ".x",
    ],
)
async def test_a_crafted_device_cookie_is_ignored(backend: Backend, cookie: str) -> None:
    async with backend.client(OWNER) as owner:
        user_id = await register(owner, "alice")
    header = b"questcity_device=" + cookie.format(now=int(backend.clock.wall())).encode("latin-1")
    async with backend.client(ATTACKER) as attacker:
        for password, status in (("a guess", 401), (PASSWORD, 200)):
            response = await attacker.post(
                TOKEN,
                json={"username": "alice", "password": password},
                headers={b"Cookie": header},
            )
            assert response.status_code == status, response.text
        assert subject(response) == user_id


async def test_logins_beyond_the_hashing_queue_get_a_503_with_retry_after(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with backend.client(OWNER) as owner:
        await register(owner, "alice")
    backend.app.state.questcity.defences.hashing = HashingSlots(1, max_waiting=1)
    release = threading.Event()

    def held(password: str, stored: str | None) -> bool:
        release.wait(10)
        return False

    monkeypatch.setattr(passwords, "verify_password", held)
    try:
        async with backend.client(ATTACKER) as attacker:
            queued = [asyncio.create_task(login(attacker, "alice", f"guess {n}")) for n in range(2)]

            async def both_in() -> bool:
                slots = backend.app.state.questcity.defences.hashing
                return (slots.running, slots.waiting) == (1, 1)

            await eventually(both_in, what="one hash running, one waiting")
            refused = await login(attacker, "alice", "one too many")
            assert refused.status_code == 503, refused.text
            seconds = int(refused.headers["Retry-After"])
            assert seconds >= 1
            assert refused.json()["error"] == "overloaded"
            assert (
                f"Too many logins at once; try again in {seconds} second"
                in (refused.json()["message"])
            )
            release.set()
            assert [r.status_code for r in await asyncio.gather(*queued)] == [401, 401]
    finally:
        release.set()


async def test_a_client_spraying_usernames_runs_out_of_budget(backend: Backend) -> None:
    async with backend.client(ATTACKER) as attacker:
        statuses = [
            (await login(attacker, f"user-{n}", "password123")).status_code for n in range(40)
        ]
    assert statuses[:20] == [401] * 20
    assert 429 in statuses
    async with backend.client(OWNER) as owner:
        await register(owner, "bob")
        assert (await login(owner, "bob", PASSWORD)).status_code == 200


async def test_a_registration_flood_is_throttled(backend: Backend) -> None:
    async with backend.client(ATTACKER) as attacker:
        statuses = []
        for n in range(24):
            response = await attacker.post(
                REGISTER, json={"username": f"spam{n}", "password": PASSWORD}
            )
            statuses.append(response.status_code)
        assert statuses[:20] == [201] * 20
        assert retry_after(response) >= 1
    async with backend.client(OWNER) as owner:
        await register(owner, "carol")


@pytest.mark.parametrize(
    "spelling",
    [
        "ALICE",
        "Alice",
        "\uff41lice",
        "\uff21\uff2c\uff29\uff23\uff25",
        "\u0430\u04cf\u0456\u0441\u0435",
    ],
)
async def test_look_alike_usernames_are_one_account(backend: Backend, spelling: str) -> None:
    async with backend.client(OWNER) as client:
        user_id = await register(client, "alice")
        taken = await client.post(REGISTER, json={"username": spelling, "password": "other pass 1"})
        assert taken.status_code == 409, taken.text
        assert taken.json()["error"] == "username_taken"
        assert subject(await login(client, spelling, PASSWORD)) == user_id


async def test_a_name_that_grows_under_nfkc_is_a_plain_refusal(backend: Backend) -> None:
    # 64 characters typed, 1,152 once NFKC-normalised: longer than the key column.
    name = "\ufdfa" * 64
    async with backend.client(OWNER) as client:
        assert (await login(client, name, PASSWORD)).status_code == 401
        refused = await client.post(REGISTER, json={"username": name, "password": PASSWORD})
    assert refused.status_code == 422
    assert "at most 64 characters" in refused.json()["fields"]["username"]


@pytest.mark.parametrize(
    "spelling", ["al\u034fice", "alice\ufe0f", "alice\U000e0100", "alice\u180b", "alice\u3164"]
)
async def test_a_name_with_invisible_characters_is_refused(backend: Backend, spelling: str) -> None:
    async with backend.client(OWNER) as client:
        await register(client, "alice")
        refused = await client.post(REGISTER, json={"username": spelling, "password": PASSWORD})
    assert refused.status_code == 422, refused.text
    assert "invisible characters" in refused.json()["fields"]["username"]


async def test_a_mixed_script_username_is_refused(backend: Backend) -> None:
    async with backend.client(OWNER) as client:
        response = await client.post(
            REGISTER, json={"username": "\u0430lice", "password": PASSWORD}
        )
    assert response.status_code == 422, response.text
    problem = response.json()["fields"]["username"]
    assert "mixes letters of different scripts (Cyrillic and Latin)" in problem


async def test_a_short_password_is_refused_and_a_long_passphrase_accepted(
    backend: Backend,
) -> None:
    async with backend.client(OWNER) as client:
        response = await client.post(REGISTER, json={"username": "dave", "password": "1234567"})
        assert response.status_code == 422, response.text
        assert "at least 8 characters" in response.json()["fields"]["password"]
        passphrase = "the quick brown fox jumps over the lazy dog " * 10
        await register(client, "dave", passphrase)
        assert (await login(client, "dave", passphrase)).status_code == 200


async def test_existing_accounts_keep_working_after_the_migration(
    database_url: str, tmp_path: Path, counted_hashes: list[str]
) -> None:
    """Accounts made before usernames were normalised: look-alike names that are separate
    accounts, and a password shorter than today's minimum."""
    engine = create_async_engine(database_url)
    try:
        await migrate.upgrade(engine, "0001")
        users = sa.table(
            "users",
            sa.column("id", sa.String),
            sa.column("username", sa.String),
            sa.column("password_hash", sa.String),
            sa.column("created_at", sa.DateTime(timezone=True)),
        )
        rows = [
            {
                "id": f"user-{n}",
                "username": name,
                "password_hash": hash_password(f"old password {n}" if name != "eve" else "pw"),
                "created_at": datetime(2026, 1, n + 1, tzinfo=UTC),
            }
            for n, name in enumerate(["alice", "ALICE", "\uff41lice", "eve"])
        ]
        async with engine.begin() as connection:
            await connection.execute(users.insert(), rows)
    finally:
        await engine.dispose()

    async with (
        running(database_url, tmp_path, counted_hashes) as backend,
        backend.client(OWNER) as client,
    ):
        # Each keeps logging in with the name exactly as registered...
        for n, name in enumerate(["alice", "ALICE", "\uff41lice"]):
            assert subject(await login(client, name, f"old password {n}")) == f"user-{n}"
        # ...another spelling finds the oldest of them,
        assert subject(await login(client, "Alice", "old password 0")) == "user-0"
        # ...no new account can take the name,
        taken = await client.post(REGISTER, json={"username": "aLiCe", "password": PASSWORD})
        assert taken.status_code == 409
        # ...and a password made before the minimum length still works.
        assert subject(await login(client, "eve", "pw")) == "user-3"


async def insert_as_an_old_pod(database_url: str, names: list[str]) -> None:
    """Accounts inserted as a pod of the version before migration 0002 does, still running
    during a rolling upgrade: it knows nothing of ``username_key``."""
    engine = create_async_engine(database_url)
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("username", sa.String),
        sa.column("password_hash", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    try:
        for name in names:  # one registration, one transaction, as the old code did
            async with engine.begin() as connection:
                await connection.execute(
                    users.insert(),
                    {
                        "id": f"old-{name}",
                        "username": name,
                        "password_hash": hash_password(f"{name} password"),
                        "created_at": datetime.now(UTC),
                    },
                )
    finally:
        await engine.dispose()


async def test_old_pods_keep_registering_during_a_rolling_upgrade(
    database_url: str, tmp_path: Path, counted_hashes: list[str]
) -> None:
    """Before: 0002's unique index took the first old-pod row's '' key, and every later
    registration on an old pod was refused (409 for every name)."""
    engine = create_async_engine(database_url)
    try:
        await migrate.upgrade(engine)  # the migration job ran; old pods still serve
    finally:
        await engine.dispose()
    await insert_as_an_old_pod(database_url, ["bob", "carol", "Dave", "dave"])

    async with (
        running(database_url, tmp_path, counted_hashes) as backend,  # a new pod starts
        backend.client(OWNER) as client,
    ):
        for spelling in ("BOB", "\uff23arol", "DAVE"):  # look-alikes of their names: taken
            taken = await client.post(REGISTER, json={"username": spelling, "password": PASSWORD})
            assert taken.status_code == 409, taken.text
        assert subject(await login(client, "Bob", "bob password")) == "old-bob"
        # Dave and dave were two accounts: each logs in by its exact name, the oldest by others.
        assert subject(await login(client, "dave", "dave password")) == "old-dave"
        assert subject(await login(client, "Dave", "Dave password")) == "old-Dave"
        assert subject(await login(client, "DAVE", "Dave password")) == "old-Dave"

        # An old pod still running registers more, after the new pod started.
        await insert_as_an_old_pod(database_url, ["erin", "frank"])
        taken = await client.post(REGISTER, json={"username": "ERIN", "password": PASSWORD})
        assert taken.status_code == 409, taken.text
        assert subject(await login(client, "Frank", "frank password")) == "old-frank"
        await register(client, "grace")  # and new names are as free as ever


# -- through a real uvicorn: which address is the client ------------------------------------------


@contextlib.asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """The backend under uvicorn as ``questcity backend`` runs it, on SQLite; its base URL."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/questcity.db",
        keys_dir=tmp_path / "keys",
        health_interval=0.2,
    )
    port = free_port("127.0.0.1")
    server = build_server(settings, "127.0.0.1", port, clock=SkewClock())
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/api/v1/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, what="server ready")
        yield base
    finally:
        server.should_exit = True
        await serving


def from_address(base: str, source: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=base, transport=transport)


async def test_a_client_cannot_pick_its_address_with_x_forwarded_for(tmp_path: Path) -> None:
    async with served(tmp_path) as base, from_address(base, "127.0.0.2") as attacker:
        statuses = []
        for n in range(12):  # a fresh "address" on every guess
            response = await attacker.post(
                TOKEN,
                json={"username": "alice", "password": f"guess {n}"},
                headers={"X-Forwarded-For": f"10.9.{n}.1"},
            )
            statuses.append(response.status_code)
    assert statuses[:6] == [401] * 6
    assert 429 in statuses


async def test_clients_behind_a_local_proxy_are_told_apart(tmp_path: Path) -> None:
    """A reverse proxy on the same host (connecting from 127.0.0.1) names each client in
    ``X-Forwarded-For``: the guesser behind it is throttled, another client is not."""
    async with served(tmp_path) as base, from_address(base, "127.0.0.1") as proxy:
        owner = {"X-Forwarded-For": OWNER}
        credentials = {"username": "alice", "password": PASSWORD}
        assert (await proxy.post(REGISTER, json=credentials, headers=owner)).status_code == 201
        # The guesser sends its own X-Forwarded-For, a new one each time; the proxy appends
        # the address it sees. Only that last one counts.
        answers = [
            await proxy.post(
                TOKEN,
                json={**credentials, "password": "wrong"},
                headers={"X-Forwarded-For": f"10.9.{n}.1, {ATTACKER}"},
            )
            for n in range(8)
        ]
        assert answers[-1].status_code == 429
        proxy.cookies.clear()  # no device cookie: only the address tells the owner apart
        assert (await proxy.post(TOKEN, json=credentials, headers=owner)).status_code == 200


async def test_clients_behind_a_proxy_in_a_trusted_network_are_told_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy on another host (here 127.0.0.5) trusted as a network, the way compose.yaml and
    the k8s ConfigMap set FORWARDED_ALLOW_IPS: uvicorn takes CIDR ranges, and the guesser behind
    it is throttled while another client is not."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.0/29")
    async with served(tmp_path) as base, from_address(base, "127.0.0.5") as proxy:
        owner = {"X-Forwarded-For": OWNER}
        credentials = {"username": "alice", "password": PASSWORD}
        assert (await proxy.post(REGISTER, json=credentials, headers=owner)).status_code == 201
        attacker = {"X-Forwarded-For": ATTACKER}
        answers = [
            await proxy.post(TOKEN, json={**credentials, "password": "wrong"}, headers=attacker)
            for _ in range(8)
        ]
        assert answers[-1].status_code == 429
        proxy.cookies.clear()
        assert (await proxy.post(TOKEN, json=credentials, headers=owner)).status_code == 200
