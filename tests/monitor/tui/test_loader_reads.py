"""The overview's reads (#13): a few statements for the whole fleet, answering what the
one-component reads answer.

A refresh read each target's last check, and each component's recent response times and uptimes,
one query at a time: ~8,000 queries for 1,000 targets, seconds behind on the on-call screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from monitor.config import parse_config
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    HistoryReader,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from monitor.tui.data import OverviewLoader
from monitor.tui.uptimes import UPTIME_WINDOWS
from tests.monitor.tui.conftest import Store
from tests.monitor.tui.history import HOUR, NOW


@pytest.mark.parametrize("later", [0.0, 1234.5, 5 * HOUR + 17])
async def test_the_overview_shows_what_the_one_component_reads_answer(
    store: Store, later: float
) -> None:
    now = NOW + later  # on a period's boundary or not
    overview = await OverviewLoader(store.reader, store.config).load(now)

    checked = [row for row in overview.rows if row.checked_at is not None]
    assert len(checked) == 6  # two targets, four services
    reader = store.reader
    for row in checked:
        key = (row.target, row.service)
        assert row.recent == tuple(await reader.recent_latencies(*key)), key
        expected = []  # each window's last periods summed from the bars, rounded down (#14)
        for window in UPTIME_WINDOWS:
            bars = await reader.bars(*key, period=window.period, count=window.periods, now=now)
            checks, up = sum(b.checks for b in bars), sum(b.up for b in bars)
            expected.append((up * 10_000 // checks) / 100 if checks else None)
        assert list(row.uptime) == expected, key
        if row.is_target:
            latest = await reader.latest(row.target)
            assert latest is not None and row.since == latest.since
    # Not vacuous: the history has figures in every window, and the outage shows in them.
    assert all(value is not None for row in checked for value in row.uptime)
    assert any(value is not None and value < 100 for row in checked for value in row.uptime)
    assert any(len(row.recent) == 30 for row in checked)


CONFIG = """
[storage]
url = "sqlite:///{path}"
"""
TARGET = """
[[targets]]
name = "api-{n}"
url = "http://api-{n}.test"
interval = 10
"""


async def write_fleet(url: str, targets: int) -> None:
    """Three checks of each target, each with two services."""
    engine = open_engine(url)
    try:
        await create_schema(engine)
        writer = HistoryWriter(engine)
        for n in range(targets):
            for r in range(3):
                services = (
                    ServiceSample("database", Status.HEALTHY, 3.0 + r, 0, "closed", {}),
                    ServiceSample("s3", Status.DEGRADED, None, 2, "half_open", {}),
                )
                at = NOW - 30 + 10 * r
                record = CheckRecord(f"api-{n}", at, Status.HEALTHY, 9.0, 200, None, services)
                await writer.record_check(record)
        await writer.flush()
    finally:
        await engine.dispose()


async def statements_of_a_refresh(tmp_path: Path, targets: int) -> int:
    path = tmp_path / f"fleet-{targets}.db"
    await write_fleet(f"sqlite:///{path}", targets)
    text = CONFIG.format(path=path) + "".join(TARGET.format(n=n) for n in range(targets))
    config = parse_config(text, tmp_path / "monitor.toml")
    reading = open_engine(f"sqlite:///{path}", read_only=True)
    executed: list[object] = []
    event.listen(reading.sync_engine, "before_cursor_execute", lambda *a: executed.append(a[2]))
    try:
        overview = await OverviewLoader(HistoryReader(reading), config).load(NOW)
    finally:
        await reading.dispose()
    assert len([row for row in overview.rows if row.checked_at is not None]) == 3 * targets
    assert all(len(row.recent) == 3 for row in overview.rows if row.service != "s3")
    return len(executed)


async def test_a_refresh_reads_in_statements_that_do_not_grow_with_the_fleet(
    tmp_path: Path,
) -> None:
    few = await statements_of_a_refresh(tmp_path, 2)
    many = await statements_of_a_refresh(tmp_path, 40)
    assert many == few, f"{few} statements for 2 targets, {many} for 40"
    assert many <= 15
    assert TARGET_COMPONENT == ""  # the target's own row is one of the components read
