"""The overview table's cells say what the rest of the monitor says (#14).

- Uptime: the very figure the status page prints, as :mod:`monitor.figures` formats it (two
  decimals, rounded down, ``%`` where the column has room). The compact layout floored it to one
  decimal (``82.7`` beside the page's ``82.78%``) and the wide one dropped the unit.
- Last error: with its age, as the detail screen shows it, and cut between words to its column,
  never inside one ("CircuitBreakerOpenErro" reads as another error).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest

from monitor.config import parse_config
from monitor.store import (
    CheckRecord,
    ServiceSample,
    Status,
)
from monitor.tui.app import MonitorApp
from shared.resilience.testing import FakeClock
from tests.monitor.tui.conftest import AppFactory, Store, refuse, settle
from tests.monitor.tui.history import NOW as HISTORY_NOW
from tests.monitor.tui.test_keys import API_DB, SIZE, table
from tests.monitor.uptime_store import API, CONFIG, UptimeStore, page_uptimes, uptime_store

S3 = f"{API}::s3"
NOW = 1_747_224_000.0 + 25 * 60  # a fresh stack: all its checks in this hour and today


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[UptimeStore]:
    async with uptime_store(tmp_path / "monitor.db") as opened:
        yield opened


async def test_the_overview_prints_the_pages_uptime(fresh: UptimeStore, tmp_path: Path) -> None:
    url, writer, reader = fresh
    start = NOW - 20 * 60
    for n in range(245):  # 5 of 245 checks failed: 97.959 % -> 97.95 %, never 97.9 or 98
        status = Status.UNHEALTHY if n >= 240 else Status.HEALTHY
        sample = ServiceSample("s3", status, 7.0, 0, "closed", {})
        overall = Status.HEALTHY if status is Status.HEALTHY else Status.DEGRADED
        await writer.record_check(
            CheckRecord(API, start + 5 * n, overall, 12.0, 200, None, (sample,))
        )
    page = (await page_uptimes(url, NOW))["Photos and avatars"]
    assert page == "97.95%"

    config = parse_config(CONFIG.format(path=tmp_path / "monitor.db"))
    cells = {}
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        for size in ((160, 48), (80, 24)):
            app = MonitorApp(
                config,
                reader=reader,
                writer=writer,
                http=http,
                clock=FakeClock(wall_start=NOW),
                environ={},
                actor="tester",
                tz=UTC,
                refresh_interval=3600,
            )
            async with app.run_test(size=size) as pilot:
                await settle(pilot)
                shown = table(app)
                columns = ("uptime",) if shown.compact else ("up24h", "up7d", "up30d")
                cells[size] = [shown.cell_text(S3, column) for column in columns]
    wide, compact = cells[(160, 48)], cells[(80, 24)][0].split()

    assert wide == [page, page, page]
    assert compact == [page.removesuffix("%")] * 3


async def test_the_last_error_with_its_age_cut_between_words(
    make_app: AppFactory, store: Store
) -> None:
    breaker = "CircuitBreakerOpenError"
    long = "connection to the database server at db.internal refused after the pool timed out"
    database = ServiceSample(
        "database",
        Status.UNHEALTHY,
        None,
        9,
        "open",
        {"last_error": breaker, "last_error_at": HISTORY_NOW - 185},
    )
    s3 = ServiceSample("s3", Status.DEGRADED, 7.0, 2, "closed", {"last_error": long})
    record = CheckRecord(API, HISTORY_NOW - 1, Status.UNHEALTHY, 12.0, 503, None, (database, s3))
    await store.writer.record_check(record)

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        with_age = table(app).cell_text(API_DB, "error")
        cut = table(app).cell_text(S3, "error")

    assert with_age == f"{breaker}, 3 min ago"
    assert cut.endswith("…")
    assert long.startswith(cut.removesuffix("…") + " ")  # whole words only
    assert len(cut) <= 34
