"""A status page on a store the monitor has not upgraded yet.

In a rolling deploy a status page is upgraded on its own, and it never writes, so it reads a store
of an older schema as it finds it: a store as the monitor of ce5b50d left it
(``tests/monitor/store/fixtures/``) has no ``day_strips_v2``, and the page still answers with its
statuses and the 90 days from the roll-ups. Driven through the real app, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.store import open_engine
from monitor.store.migrate import upgrade_store
from tests.monitor.store.fixtures import load
from tests.monitor.store.fixtures.generate import NOW
from tests.monitor.store.support import empty_store_url, sqlite_url
from tests.statuspage.conftest import serving

OLD = "ce5b50d"
"""A monitor before the day strips' second form (revision 0002: no ``day_strips_v2``)."""

PATHS = ("/", "/badge/api.svg", "/badge/database.svg", "/api/v2/summary.json")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(request.param, request, tmp_path)


@pytest.fixture
async def old_store(empty_url: str) -> AsyncIterator[str]:
    """The URL of a store as the monitor of :data:`OLD` left it."""
    engine = open_engine(empty_url)
    try:
        await load(engine, empty_url, OLD)
        yield empty_url
    finally:
        await engine.dispose()


async def pages(url: str) -> dict[str, tuple[int, str]]:
    async with serving(url, clock=lambda: NOW) as http:
        answers = {path: await http.get(path) for path in PATHS}
    return {path: (answer.status_code, answer.text) for path, answer in answers.items()}


async def test_a_store_not_yet_upgraded_is_served_with_its_90_days(old_store: str) -> None:
    before = await pages(old_store)

    assert {path: status for path, (status, _) in before.items()} == dict.fromkeys(PATHS, 200)
    assert "API: Operational, 100% uptime over 90 days" in before["/badge/api.svg"][1]
    assert "Database: Operational, 76.19% uptime over 90 days" in before["/badge/database.svg"][1]
    # The same page, bar for bar, as once the daemon has upgraded the store (its roll-ups are the
    # truth either way).
    engine = open_engine(old_store)
    try:
        await upgrade_store(engine)
    finally:
        await engine.dispose()
    assert await pages(old_store) == before


def sql(url: str, statement: str) -> None:
    file = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        file.execute(statement)
        file.commit()
    finally:
        file.close()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("DROP TABLE rollups", id="no-rollups"),  # StoreNotInitialised
        pytest.param("ALTER TABLE rollups DROP COLUMN worst", id="no-column"),  # mismatch
    ],
)
async def test_a_store_whose_history_cannot_be_read_keeps_its_statuses(
    tmp_path: Path, damage: str
) -> None:
    url = sqlite_url(tmp_path / "monitor.db")
    engine = open_engine(url)
    try:
        await load(engine, url, OLD)
    finally:
        await engine.dispose()
    sql(url, damage)

    answers = await pages(url)

    assert {path: status for path, (status, _) in answers.items()} == dict.fromkeys(PATHS, 200)
    # The current status, without the uptime it cannot read.
    assert 'aria-label="API: Operational"' in answers["/badge/api.svg"][1]
    assert "API" in answers["/"][1]
