"""ARCHITECTURE §8 against real servers: what players see while PostgreSQL or S3 is down, and after.

In every scenario: no HTTP 500; writes answer 503 with ``Retry-After`` (fast once the breaker is
open); cached reads answer 200 marked stale; image reads fall back to the placeholder; recovery
needs no restart; and every write answered 2xx is in the database afterwards.
"""

from __future__ import annotations

import asyncio

import httpx

from backend.degradation import DEGRADED_HEADER
from backend.storage import PLACEHOLDER_PNG
from shared.resilience import CircuitState
from tests.backend.integration.conftest import PNG, Harness
from tests.support import FaultProxy, PostgresServer, S3Server
from tests.support.polling import eventually


async def health(harness: Harness) -> httpx.Response:
    return await harness.client.get("/api/v1/health/")


async def overall_status(harness: Harness) -> str:
    status: str = (await health(harness)).json()["status"]
    return status


async def warm_up(harness: Harness) -> tuple[str, dict[str, object], dict[str, object]]:
    """A quest with a cover, read once so the last good copies exist."""
    created = await harness.create_quest("Kremlin walk", key="warm-up")
    assert created.status_code == 201
    quest_id = created.json()["id"]
    cover = await harness.client.put(
        f"/api/v1/quests/{quest_id}/cover", content=PNG, headers=harness.auth()
    )
    assert cover.status_code == 200
    one = await harness.client.get(f"/api/v1/quests/{quest_id}")
    listing = await harness.client.get("/api/v1/quests", params={"city": "Kazan"})
    image = await harness.client.get(f"/api/v1/quests/{quest_id}/cover")
    assert (one.status_code, listing.status_code, image.status_code) == (200, 200, 200)
    assert image.content == PNG
    return quest_id, one.json(), listing.json()


async def assert_writes_refused_fast(harness: Harness) -> None:
    """Writes answer 503 + Retry-After; once the breaker is open, without waiting on the pool."""
    for attempt in range(4):
        response = await harness.create_quest(f"during outage {attempt}")
        assert response.status_code == 503, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["service"] == "database"
    assert harness.breaker("database") is CircuitState.OPEN
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await harness.create_quest("breaker is open")
    assert loop.time() - started < 0.2
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 20, "the breaker's own estimate"
    for text in (response.text, *response.headers.values()):
        assert "127.0.0.1" not in text and "questcity-test-password" not in text


async def assert_stale_reads(harness: Harness, quest_id: str, one: object, listing: object) -> None:
    stale_one = await harness.client.get(f"/api/v1/quests/{quest_id}")
    assert stale_one.status_code == 200
    assert stale_one.headers[DEGRADED_HEADER] == "database"
    assert stale_one.json() == one
    stale_list = await harness.client.get("/api/v1/quests", params={"city": "Kazan"})
    assert stale_list.status_code == 200
    assert stale_list.headers[DEGRADED_HEADER] == "database"
    assert stale_list.json() == listing
    never_read = await harness.client.get("/api/v1/quests/never-read-before")
    assert never_read.status_code == 503
    assert never_read.json()["service"] == "database"


async def recover_database(harness: Harness) -> None:
    harness.clock.jump(31.0)  # past the breaker's recovery timeout; trials may run now

    async def healthy() -> bool:
        return await overall_status(harness) == "healthy"

    await eventually(healthy, what="health back to healthy")
    assert harness.breaker("database") is CircuitState.CLOSED
    after = await harness.create_quest("after the outage")
    assert after.status_code == 201


async def assert_nothing_lost(harness: Harness) -> None:
    stored = await harness.stored_quest_ids()
    assert set(harness.written) <= stored, set(harness.written) - stored
    harness.assert_no_server_errors()


async def test_database_killed_and_back(backend: Harness, postgres_server: PostgresServer) -> None:
    quest_id, one, listing = await warm_up(backend)
    postgres_server.kill()
    await assert_writes_refused_fast(backend)
    await assert_stale_reads(backend, quest_id, one, listing)

    async def unhealthy() -> bool:
        response = await health(backend)
        return response.status_code == 503 and response.json()["status"] == "unhealthy"

    await eventually(unhealthy, what="overall health unhealthy (503)")
    live = await backend.client.get("/api/v1/health/live")
    assert live.status_code == 200
    postgres_server.start()
    await recover_database(backend)
    await assert_nothing_lost(backend)


async def test_database_blackholed_and_back(backend: Harness, pg_proxy: FaultProxy) -> None:
    quest_id, one, listing = await warm_up(backend)
    pg_proxy.blackhole()
    await assert_writes_refused_fast(backend)
    await assert_stale_reads(backend, quest_id, one, listing)
    pg_proxy.heal()
    await recover_database(backend)
    await assert_nothing_lost(backend)


async def assert_s3_degraded(harness: Harness, quest_id: str) -> None:
    for _ in range(2):
        upload = await harness.client.put(
            f"/api/v1/quests/{quest_id}/cover", content=PNG, headers=harness.auth()
        )
        assert upload.status_code == 503
        assert upload.json()["service"] == "s3"
        assert int(upload.headers["Retry-After"]) >= 1
    assert harness.breaker("s3") is CircuitState.OPEN
    image = await harness.client.get(f"/api/v1/quests/{quest_id}/cover")
    assert image.status_code == 200
    assert image.headers[DEGRADED_HEADER] == "s3"
    assert image.content == PLACEHOLDER_PNG

    async def degraded() -> bool:
        response = await health(harness)
        return response.status_code == 200 and response.json()["status"] == "degraded"

    await eventually(degraded, what="overall health degraded (S3 is not critical)")
    # Everything that does not need files keeps working.
    assert (await harness.create_quest("while S3 is down")).status_code == 201
    assert (await harness.client.get(f"/api/v1/quests/{quest_id}")).status_code == 200


async def recover_s3(harness: Harness, quest_id: str) -> None:
    harness.clock.jump(31.0)

    async def healthy() -> bool:
        return await overall_status(harness) == "healthy"

    await eventually(healthy, what="health back to healthy after S3 returns")
    assert harness.breaker("s3") is CircuitState.CLOSED

    # A read with a fallback is tried once, and a restarted SeaweedFS answers object reads with
    # HTTP 500 for a moment after its bucket check (the health probe) already succeeds: the first
    # read may get the placeholder (marked, never cached), so wait for the real image.
    async def real_image() -> bool:
        image = await harness.client.get(f"/api/v1/quests/{quest_id}/cover")
        return (image.status_code, image.content) == (200, PNG)

    await eventually(real_image, what="the real cover served again after S3 returns")
    image = await harness.client.get(f"/api/v1/quests/{quest_id}/cover")
    assert (image.status_code, image.content) == (200, PNG)
    assert DEGRADED_HEADER not in image.headers
    upload = await harness.client.put(
        f"/api/v1/quests/{quest_id}/cover", content=PNG, headers=harness.auth()
    )
    assert upload.status_code == 200


async def test_s3_killed_and_back(backend: Harness, s3_server: S3Server) -> None:
    quest_id, _, _ = await warm_up(backend)
    s3_server.kill()
    await assert_s3_degraded(backend, quest_id)
    s3_server.start()
    await recover_s3(backend, quest_id)
    await assert_nothing_lost(backend)


async def test_s3_blackholed_and_back(backend: Harness, s3_proxy: FaultProxy) -> None:
    quest_id, _, _ = await warm_up(backend)
    s3_proxy.blackhole()
    await assert_s3_degraded(backend, quest_id)
    s3_proxy.heal()
    await recover_s3(backend, quest_id)
    await assert_nothing_lost(backend)


async def test_both_down_and_back(
    backend: Harness, pg_proxy: FaultProxy, s3_proxy: FaultProxy
) -> None:
    quest_id, one, listing = await warm_up(backend)
    pg_proxy.refuse()
    s3_proxy.refuse()
    await assert_writes_refused_fast(backend)
    await assert_stale_reads(backend, quest_id, one, listing)
    # The cover's key comes from the last good copy, the image from the placeholder.
    image = await backend.client.get(f"/api/v1/quests/{quest_id}/cover")
    assert image.status_code == 200
    assert image.headers[DEGRADED_HEADER] == "database, s3"
    assert image.content == PLACEHOLDER_PNG

    async def unhealthy() -> bool:
        body = (await health(backend)).json()
        return bool(body["status"] == "unhealthy" and body["services"]["unhealthy"] == 2)

    await eventually(unhealthy, what="both services unhealthy")
    pg_proxy.heal()
    s3_proxy.heal()
    await recover_database(backend)
    await assert_nothing_lost(backend)


async def test_an_idempotent_create_retried_after_a_failure_is_not_duplicated(
    backend: Harness,
) -> None:
    first = await backend.create_quest("Only once", key="retry-me")
    again = await backend.create_quest("Only once", key="retry-me")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    listing = await backend.client.get("/api/v1/quests", params={"city": "Kazan"})
    assert [q["title"] for q in listing.json()["items"]].count("Only once") == 1
    reused = await backend.client.post(
        "/api/v1/quests",
        json={"title": "Something else", "city": "Kazan", "points": 5},
        headers={**backend.auth(), "Idempotency-Key": "retry-me"},
    )
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
