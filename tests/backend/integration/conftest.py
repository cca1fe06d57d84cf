"""The backend running in-process against a real PostgreSQL and a real S3 server, each behind a
fault proxy; requests go through httpx's ASGI transport with the app's own lifespan."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from backend.app import create_app
from backend.auth import Role
from backend.settings import Settings
from backend.state import AppState
from shared.resilience import CircuitState
from shared.resilience.testing import waits_disabled
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.clock import SkewClock
from tests.support.polling import eventually

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class Harness:
    app: Starlette
    client: httpx.AsyncClient
    clock: SkewClock
    settings: Settings
    dsn: str
    admin_token: str
    player_token: str = ""
    written: list[str] = field(default_factory=list)
    """Ids of quests whose create was answered 2xx: they must all be in the database."""
    statuses: list[int] = field(default_factory=list)
    """The status of every response, so a test can assert there was never a 500."""

    def assert_no_server_errors(self) -> None:
        assert not [s for s in self.statuses if s >= 500 and s != 503], self.statuses

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.questcity
        return state

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.player_token}"}

    async def create_quest(self, title: str, *, key: str | None = None) -> httpx.Response:
        headers = self.auth()
        if key is not None:
            headers["Idempotency-Key"] = key
        response = await self.client.post(
            "/api/v1/quests",
            json={"title": title, "city": "Kazan", "points": 5, "description": "d"},
            headers=headers,
        )
        if response.status_code == 201:
            self.written.append(response.json()["id"])
        return response

    def breaker(self, name: str) -> CircuitState:
        breaker = self.state.registry.find_circuit_breaker(name)
        assert breaker is not None
        return breaker.state

    async def stored_quest_ids(self) -> set[str]:
        connection = await asyncpg.connect(self.dsn)
        try:
            rows = await connection.fetch("SELECT id FROM quests")
        finally:
            await connection.close()
        return {row["id"] for row in rows}


def backend_settings(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
    **overrides: object,
) -> tuple[Settings, str]:
    name = f"qc_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    values: dict[str, object] = {
        "database_url": postgres_server.url_for(database=name, address=pg_proxy.address),
        "s3_endpoint_url": s3_proxy.url(),
        "s3_bucket": f"qc-{uuid.uuid4().hex[:12]}",
        "s3_access_key": s3_server.access_key,
        "s3_secret_key": s3_server.secret_key,
        "keys_dir": tmp_path / "keys",
        "health_interval": 0.2,
        "db_timeout": 1.0,
        "s3_timeout": 1.0,
        "db_pool_size": 5,
        "db_max_overflow": 5,
        **overrides,
    }
    return Settings(**values), postgres_server.dsn_for(database=name)  # type: ignore[arg-type]


async def _record(statuses: list[int], response: httpx.Response) -> None:
    statuses.append(response.status_code)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, dsn: str, *, wait_ready: bool = True, fast_retries: bool = True
) -> AsyncIterator[Harness]:
    clock = SkewClock()
    statuses: list[int] = []
    app = create_app(settings, clock=clock)
    with waits_disabled() if fast_retries else contextlib.nullcontext():
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://questcity.test",
                event_hooks={"response": [lambda r: _record(statuses, r)]},
            ) as client,
        ):
            state: AppState = app.state.questcity
            harness = Harness(
                app,
                client,
                clock,
                settings,
                dsn,
                admin_token=state.token_service().mint("ops", Role.ADMIN, 3600),
                statuses=statuses,
            )
            if wait_ready:
                await eventually(lambda: _ready(client), what="backend ready")
                harness.player_token = await _player(client)
            yield harness


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/api/v1/health/ready")).status_code == 200


async def _player(client: httpx.AsyncClient) -> str:
    credentials = {"username": f"player-{uuid.uuid4().hex[:8]}", "password": "correct horse"}
    assert (await client.post("/api/v1/auth/register", json=credentials)).status_code == 201
    response = await client.post("/api/v1/auth/token", json=credentials)
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def backend(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    settings, dsn = backend_settings(postgres_server, pg_proxy, s3_server, s3_proxy, tmp_path)
    async with running(settings, dsn) as harness:
        yield harness
