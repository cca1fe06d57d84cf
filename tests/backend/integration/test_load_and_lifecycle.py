"""Pool exhaustion under a burst, start-up with the database down, and a graceful shutdown
under load — against the real servers."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import asyncpg
import httpx

from backend.server import build_server
from shared.resilience import CircuitState
from tests.backend.integration.conftest import backend_settings, running
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.polling import eventually
from tests.support.ports import free_port


async def test_pool_exhaustion_sheds_load_with_503_instead_of_hanging(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    settings, dsn = backend_settings(
        postgres_server,
        pg_proxy,
        s3_server,
        s3_proxy,
        tmp_path,
        db_pool_size=2,
        db_max_overflow=0,
        db_timeout=10.0,
    )
    async with running(settings, dsn) as harness:
        pg_proxy.slow(0.05)  # every database round trip now takes a while
        loop = asyncio.get_running_loop()
        started = loop.time()
        responses = await asyncio.gather(
            *(harness.create_quest(f"burst {n}", key=f"burst-{n}") for n in range(200))
        )
        elapsed = loop.time() - started
        pg_proxy.heal()
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 503}, statuses
        shed = [r for r in responses if r.status_code == 503]
        assert shed, "a pool of 2 cannot take 200 writes at once"
        assert statuses.count(201) >= 2
        for response in shed:
            assert response.json()["error"] == "overloaded"
            assert response.headers["Retry-After"] == "1"
        # Nobody waited out the seed's 30 s pool timeout; the queue waits at most 5 s.
        assert elapsed < 15.0, elapsed
        assert harness.breaker("database") is CircuitState.CLOSED, "load is not an outage"
        metrics = (await harness.client.get("/metrics")).text
        assert "questcity_db_pool_exhausted_total" in metrics
        exhausted = next(
            line
            for line in metrics.splitlines()
            if line.startswith("questcity_db_pool_exhausted_total")
        )
        assert float(exhausted.split()[-1]) == len(shed)
        assert set(harness.written) <= await harness.stored_quest_ids()
        harness.assert_no_server_errors()


async def test_start_up_with_the_database_down_then_ready_when_it_returns(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    settings, dsn = backend_settings(postgres_server, pg_proxy, s3_server, s3_proxy, tmp_path)
    pg_proxy.refuse()
    async with running(settings, dsn, wait_ready=False, fast_retries=False) as harness:
        client = harness.client

        async def first_round_done() -> bool:
            return harness.state.lifecycle.first_round_done

        await eventually(first_round_done, what="first round of checks")
        live = await client.get("/api/v1/health/live")
        assert live.status_code == 200
        ready = await client.get("/api/v1/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "starting: database migrations not applied yet"
        overall = await client.get("/api/v1/health/")
        assert (overall.status_code, overall.json()["status"]) == (503, "unhealthy")

        pg_proxy.heal()
        harness.clock.jump(31.0)  # the checks' breaker may try again

        async def is_ready() -> bool:
            return (await client.get("/api/v1/health/ready")).status_code == 200

        await eventually(is_ready, within=30.0, what="ready once the database is back")
        credentials = {"username": "late-starter", "password": "pw-long-enough"}
        assert (await client.post("/api/v1/auth/register", json=credentials)).status_code == 201
        harness.assert_no_server_errors()


async def test_graceful_shutdown_finishes_in_flight_requests(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    settings, dsn = backend_settings(
        postgres_server,
        pg_proxy,
        s3_server,
        s3_proxy,
        tmp_path,
        drain_delay=0.5,
        shutdown_grace=10.0,
        db_timeout=10.0,
    )
    port = free_port("127.0.0.1")
    server = build_server(settings, "127.0.0.1", port)
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:

        async def is_ready() -> bool:
            try:
                return (await client.get("/api/v1/health/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(is_ready, what="server ready")
        credentials = {"username": f"p-{uuid.uuid4().hex[:6]}", "password": "pw-long-enough"}
        await client.post("/api/v1/auth/register", json=credentials)
        token = (await client.post("/api/v1/auth/token", json=credentials)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        pg_proxy.slow(0.3)  # requests now stay in flight for a second or more
        received = server.server_state.total_requests
        in_flight = [
            asyncio.create_task(
                client.post(
                    "/api/v1/quests",
                    headers={**headers, "Idempotency-Key": f"drain-{n}"},
                    json={"title": f"in flight {n}", "city": "Kazan", "points": 1},
                )
            )
            for n in range(10)
        ]

        async def all_received() -> bool:
            return server.server_state.total_requests >= received + len(in_flight)

        await eventually(all_received, what="the 10 writes reaching the server")
        server.handle_exit(signal.SIGTERM, None)
        async with httpx.AsyncClient(base_url=base, timeout=5.0) as prober:
            ready = await prober.get("/api/v1/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "shutting down"
        responses = await asyncio.gather(*in_flight)
        pg_proxy.heal()
        assert [r.status_code for r in responses] == [201] * 10
        await asyncio.wait_for(serving, timeout=30.0)
    ids = {r.json()["id"] for r in responses}
    connection = await asyncpg.connect(dsn)
    try:
        stored = {row["id"] for row in await connection.fetch("SELECT id FROM quests")}
    finally:
        await connection.close()
    assert ids <= stored
