"""The TUI's "check now" (#14) is a manual check: it moves the component's current state, and
never the public latency chart or any uptime (a 443 ms cold check on demand went into the
status page's chart). End to end: the key, the probe, the store, the page's and the TUI's reads."""

from __future__ import annotations

import httpx
import pytest

from monitor.figures import PAGE_WINDOW, TUI_WINDOWS
from monitor.store import TARGET_COMPONENT, HistoryReader, Status
from monitor.tui.app import MonitorApp
from monitor.tui.uptimes import Uptimes
from statuspage.model import PageInfo
from statuspage.source import StoreSource
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW
from tests.monitor.tui.test_keys import API_DB, SIZE, select, table

API = "questcity-api"


async def public_figures(reader: HistoryReader, now: float) -> object:
    """What the page shows and what every uptime is computed from."""
    source = StoreSource(reader, PageInfo("QuestCity", "https://status.test"), stale_after=60)
    board = await source.board(now)
    history = await source.history(board)
    keys = [c.key for c in board.components]
    return (
        {name: (h.figure, h.latency) for name, h in history.items()},
        await reader.latency_series_many([(API, TARGET_COMPONENT)], hours=24, now=now),
        {
            w.label: await reader.series_many(keys, period=w.period, count=w.periods, now=now)
            for w in (*TUI_WINDOWS, PAGE_WINDOW)
        },
    )


def row_uptimes(app: MonitorApp) -> dict[str, Uptimes]:
    assert app.overview is not None
    return {row.key: row.uptime for row in app.overview.rows}


async def test_check_now_moves_the_state_but_no_chart_and_no_uptime(
    make_app: AppFactory, store: Store
) -> None:
    async def cold_backend(request: httpx.Request) -> httpx.Response:
        await app.clock.advance(0.443)  # type: ignore[attr-defined]  # a cold check: 443 ms
        return httpx.Response(
            200,
            json={
                "status": "healthy",
                "checks": {
                    "database": {"status": "healthy", "response_time_ms": 3.5},
                    "s3": {"status": "healthy", "response_time_ms": 18.0},
                },
            },
        )

    later = NOW + 5
    before = await public_figures(store.reader, later)
    app = make_app(cold_backend)  # type: ignore[arg-type]  # MockTransport awaits it
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert table(app).cell_text(API_DB, "status") == "✖ unhealthy"
        uptimes_before = row_uptimes(app)
        await select(app, API_DB)
        await pilot.press("c")
        await settle(pilot)
        # The current state moved: the engineer sees what the check found.
        assert table(app).cell_text(API_DB, "status") == "● healthy"
        assert row_uptimes(app) == uptimes_before

    latest = await store.reader.latest(API)
    assert latest is not None
    assert latest.record.manual and latest.record.status is Status.HEALTHY
    assert latest.record.latency_ms == pytest.approx(443)
    # Nothing public moved: the page's bars, figures and latency chart, every window's roll-ups.
    assert await public_figures(store.reader, later) == before
