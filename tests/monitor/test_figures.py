"""One set of numbers (#14): :mod:`monitor.figures` computes every uptime shown — the TUI's, the
status page's and its JSON's — from the same roll-ups, rounded and printed the same way.

25 s into an S3 outage the page said 82.78 % and the TUI 100 % (the TUI kept its figures for a
minute); the detail screen put the backend's own ``availability percent 53`` beside
``uptime 24h 78.906``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.config import MonitorConfig, parse_config
from monitor.figures import (
    LAST_7D,
    LAST_24H,
    LAST_90D,
    Uptime,
    percent_text,
    read_uptimes,
    uptime,
)
from monitor.store import (
    BarSeries,
    Status,
)
from monitor.tui.data import OverviewLoader
from tests.monitor.uptime_store import API, CONFIG, UptimeStore, page_uptimes, record, uptime_store

HOUR, DAY = 3600, 86400
NOW = 1_747_224_000.0 + 25 * 60  # 2025-05-14 12:25 UTC


# -- the function ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "up", "text", "value"),
    [
        (0, 0, "no data", None),
        (10, 10, "100%", 100.0),
        (100_000, 99_999, "99.99%", 99.99),  # one failure never reads 100 %
        (3, 2, "66.66%", 66.66),  # rounded down, never up
        (29, 24, "82.75%", 82.75),
        (100, 29, "29.00%", 29.0),
        (5, 0, "0.00%", 0.0),
    ],
)
def test_rounding_and_units(checks: int, up: int, text: str, value: float | None) -> None:
    figure = Uptime(checks, up)
    assert (figure.text, figure.value) == (text, value)
    assert percent_text(figure.value) == text  # a printed figure prints itself again


def test_percent_text_rounds_down_and_says_no_data() -> None:
    assert [percent_text(v) for v in (99.996, 99.95, 100.0, 0.29 * 100, None)] == [
        "99.99%",
        "99.95%",
        "100%",
        "29.00%",
        "no data",
    ]


def test_a_window_is_its_last_periods_the_current_one_included() -> None:
    now = 10 * DAY + 5 * HOUR + 17
    first = int(now // HOUR) * HOUR - 30 * HOUR
    series = BarSeries.blank(first, HOUR, 31)
    for n in range(31):  # one check an hour; the 7 oldest hours failed
        series.put(first + n * HOUR, 1, 0 if n < 7 else 1, 1, 0.0, 0)

    assert uptime(series, LAST_24H, now) == Uptime(24, 24)  # the failures are 25-31 h ago
    assert uptime(series, LAST_24H, now + HOUR) == Uptime(23, 23)  # the new hour: no check yet
    assert uptime(series, LAST_24H, now - 2 * HOUR) == Uptime(24, 22)
    assert uptime(series, LAST_7D, now) == Uptime()  # a daily window reads daily roll-ups
    assert uptime(None, LAST_90D, now) == Uptime()


# -- one store, every output ----------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[UptimeStore]:
    async with uptime_store(tmp_path / "monitor.db") as opened:
        yield opened


async def tui_rows(loader: OverviewLoader, now: float) -> dict[str, str]:
    overview = await loader.load(now)
    return {row.title: percent_text(row.uptime[0]) for row in overview.rows}


async def test_the_page_its_json_and_the_tui_agree_through_an_outage(
    store: UptimeStore, tmp_path: Path
) -> None:
    url, writer, reader = store
    config: MonitorConfig = parse_config(CONFIG.format(path=tmp_path / "monitor.db"))
    loader = OverviewLoader(reader, config)  # one loader for the run: its cache is in play
    start = NOW - 20 * 60  # a fresh stack: 20 minutes of history, all in this hour and today
    for n in range(240):
        await record(writer, start + 5 * n, Status.HEALTHY)
    healthy = NOW - 0.5
    assert await tui_rows(loader, healthy) == {
        "QuestCity API": "100%",
        "Photos and avatars": "100%",
    }
    assert await page_uptimes(url, healthy) == {
        "QuestCity API": "100%",
        "Photos and avatars": "100%",
    }

    for n in range(5):  # S3 down: 5 checks, 25 s
        await record(writer, NOW + 5 * n, Status.UNHEALTHY)
    during = NOW + 25
    tui = await tui_rows(loader, during)
    page = await page_uptimes(url, during)
    assert page == tui == {"QuestCity API": "100%", "Photos and avatars": "97.95%"}  # 240/245

    figures = await read_uptimes(reader, [(API, "s3")], during, (LAST_24H, LAST_90D))
    assert [f.text for f in figures[(API, "s3")]] == ["97.95%", "97.95%"]
