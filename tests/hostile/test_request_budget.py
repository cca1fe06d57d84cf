"""The request budget against real servers: a dependency that silently drops packets holds no
request past ``QUESTCITY_REQUEST_TIMEOUT``.

The backend runs with the seed's deadlines (S3: breaker timeout 20 s, retry deadline 60 s;
database: breaker timeout 10 s, retry deadline 30 s) on a real PostgreSQL and a real S3 server,
each behind a fault proxy, and a budget of :data:`BUDGET` seconds. On main an upload while S3 was
blackholed waited out the seed's deadlines (60 s) for its 503, and a read the database could not
answer waited 10 s or more: here each must answer 503 within the budget. Timing is observed with
generous slack (:data:`SLACK`): the point is "bounded by the budget", not "fast".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import httpx
import pytest

from shared.resilience import CircuitState
from tests.backend.integration.conftest import PNG, Harness, backend_settings, running
from tests.support import FaultProxy, PostgresServer, S3Server

BUDGET = 2.0
"""QUESTCITY_REQUEST_TIMEOUT in these tests."""
SLACK = 4.0
"""Scheduling slack on a loaded machine; still well below the seed's shortest deadline (10 s)."""
SEED_DB_TIMEOUT = 10.0
SEED_S3_TIMEOUT = 20.0


@pytest.fixture
async def seeded(
    postgres_server: PostgresServer,
    pg_proxy: FaultProxy,
    s3_server: S3Server,
    s3_proxy: FaultProxy,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    settings, dsn = backend_settings(
        postgres_server,
        pg_proxy,
        s3_server,
        s3_proxy,
        tmp_path,
        db_timeout=SEED_DB_TIMEOUT,
        s3_timeout=SEED_S3_TIMEOUT,
        request_timeout=BUDGET,
    )
    async with running(settings, dsn, fast_retries=False) as harness:
        yield harness


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    """The answer and how long it took; fails (rather than wait a minute) past budget + slack."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(BUDGET + 2 * SLACK):
            response = await request
    except TimeoutError:
        raise AssertionError(
            f"no answer within {BUDGET + 2 * SLACK:g} s: the request waited past its "
            f"{BUDGET:g} s budget"
        ) from None
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float, service: str) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["service"] == service
    assert elapsed < BUDGET + SLACK, f"answered after {elapsed:.1f} s, budget {BUDGET:g} s"


async def test_an_upload_while_s3_is_blackholed_answers_503_within_the_budget(
    seeded: Harness, s3_proxy: FaultProxy
) -> None:
    created = await seeded.create_quest("Kremlin walk")
    assert created.status_code == 201
    cover = f"/api/v1/quests/{created.json()['id']}/cover"
    warm = await seeded.client.put(cover, content=PNG, headers=seeded.auth())
    assert warm.status_code == 200, warm.text  # the S3 client's connections are open
    s3_proxy.blackhole()

    for _ in range(5):  # the s3 breaker's failure threshold
        response, elapsed = await timed(
            seeded.client.put(cover, content=PNG, headers=seeded.auth())
        )
        assert_unavailable(response, elapsed, "s3")
        if seeded.breaker("s3") is CircuitState.OPEN:
            break
    # The cut uploads had long enough to be answered: their silence counts against S3, so the
    # breaker opens although every request's budget is shorter than its 20 s timeout.
    assert seeded.breaker("s3") is CircuitState.OPEN
    response, elapsed = await timed(seeded.client.put(cover, content=PNG, headers=seeded.auth()))
    assert_unavailable(response, elapsed, "s3")
    seeded.assert_no_server_errors()


async def test_a_read_without_a_last_good_copy_answers_503_within_the_budget(
    seeded: Harness, pg_proxy: FaultProxy
) -> None:
    pg_proxy.blackhole()
    response, elapsed = await timed(seeded.client.get("/api/v1/quests/never-read-before"))
    assert_unavailable(response, elapsed, "database")
    listing, elapsed = await timed(seeded.client.get("/api/v1/quests", params={"city": "Tver"}))
    assert_unavailable(listing, elapsed, "database")
    seeded.assert_no_server_errors()
