"""The store's migrations (:mod:`monitor.store.migrate`) on SQLite and a real PostgreSQL: a new
store gets every one; a store as an older monitor left it (``fixtures/``: today's main before the
migrations, 944ebc5; ce5b50d, strips of the first form; the very first shape, 81b1c09) is
recognised by its tables and upgraded in place, its history intact; a store of a newer program
is refused; ``questcity store``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store import HistoryReader, ReplicaCheck, create_schema, open_engine
from monitor.store.errors import StoreNotInitialised, StoreSchemaMismatch
from monitor.store.leases import LeaseStore
from monitor.store.migrate import (
    StoreUpgrade,
    head_revision,
    known_revisions,
    store_revision,
    upgrade_store,
)
from monitor.store.migrations import HEAD_REVISION, VERSION_TABLE
from monitor.store.models import (
    TARGET_COMPONENT,
    AlertState,
    ComponentState,
    IncidentState,
    Status,
)
from monitor.store.schema import metadata
from monitor.store.writer import HistoryWriter
from tests.monitor.store.fixtures import load
from tests.monitor.store.fixtures.generate import DAY, NOW, check
from tests.monitor.store.support import empty_store_url, sqlite_url

TODAYS_MAIN = "944ebc5"
"""The last version before the migrations: every table, no version table."""
STRIPS_V1 = "ce5b50d"
"""Strips as JSON in ``day_strips`` (which no version since reads), no ``day_strips_v2``."""
FIRST = "81b1c09"
"""The first version: no component states, no strips, no ``revisions`` counters."""
TABLES = {t.name for t in metadata.sorted_tables} | {VERSION_TABLE}

SETTLED = NOW - 2 * DAY
"""A day whose figures a strip holds (the newest settled day: the day before yesterday)."""
STATES = {
    ("api", TARGET_COMPONENT): ComponentState(Status.HEALTHY, NOW - DAY + 3600, NOW - 300),
    ("api", "db"): ComponentState(Status.HEALTHY, NOW - DAY + 3600, NOW - 300),
    ("web", TARGET_COMPONENT): ComponentState(Status.UNREACHABLE, NOW - 600, NOW - 300),
}
"""What the fixtures' checks say (``fixtures/generate.py``)."""


async def check_store(engine: AsyncEngine, *, config: str | None = None) -> None:
    """Raise unless the store is at this program's revision: :class:`StoreNotInitialised` for a
    store with no tables, :class:`StoreSchemaMismatch` for one older (its message names
    ``questcity store upgrade --config CONFIG``) or newer."""
    found = await store_revision(engine)
    head = head_revision()
    if found.revision == head and not found.recognised:
        return
    if not found.initialised:
        raise StoreNotInitialised()
    raise StoreSchemaMismatch(
        # (a store from before the migrations has no revision of its own yet)
        store_revision=None if found.recognised else found.revision,
        code_revision=head,
        store_is_older=found.recognised or found.revision in known_revisions(),
        config=config,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming an empty store: a new SQLite file, or a new PostgreSQL database."""
    yield from empty_store_url(request.param, request, tmp_path)


@pytest.fixture
async def engine(empty_url: str) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(empty_url)
    yield engine
    await engine.dispose()


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: set(inspect(c).get_table_names()))


async def count(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table(name))) or 0)


# -- a new store --------------------------------------------------------------------------------


async def test_a_new_store_gets_every_migration(engine: AsyncEngine) -> None:
    assert await upgrade_store(engine) == StoreUpgrade(
        before=None, after=head_revision(), recognised=False
    )

    assert await table_names(engine) == TABLES
    await check_store(engine)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:  # schema.py and the migrations agree
        assert await connection.run_sync(differences) == []


async def test_upgrading_twice_changes_nothing(engine: AsyncEngine, empty_url: str) -> None:
    await load(engine, empty_url, FIRST)
    await create_schema(engine)  # (what the daemon and the TUI call at start)
    before = {name: await count(engine, name) for name in TABLES}

    again = await upgrade_store(engine)

    assert again == StoreUpgrade(before=head_revision(), after=head_revision(), recognised=False)
    assert {name: await count(engine, name) for name in TABLES} == before


async def test_two_writers_starting_at_once_upgrade_the_store_once(
    engine: AsyncEngine, empty_url: str
) -> None:
    other = open_engine(empty_url)
    try:
        done = await asyncio.gather(upgrade_store(engine), upgrade_store(other))
    finally:
        await other.dispose()

    assert sorted(d.before or "" for d in done) == ["", head_revision()]  # the second waited
    assert await table_names(engine) == TABLES


async def test_a_reader_is_told_a_store_has_no_tables(engine: AsyncEngine) -> None:
    with pytest.raises(StoreNotInitialised):
        await check_store(engine)
    assert await table_names(engine) == set()  # (and checking made none)


# -- a store from before the migrations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "recognised_as"), [(TODAYS_MAIN, "0003"), (STRIPS_V1, "0002"), (FIRST, None)]
)
async def test_an_old_store_upgrades_in_place(
    engine: AsyncEngine, empty_url: str, version: str, recognised_as: str | None
) -> None:
    await load(engine, empty_url, version)

    done = await upgrade_store(engine)

    assert done == StoreUpgrade(before=recognised_as, after=head_revision(), recognised=True)
    assert await table_names(engine) - {"day_strips"} == TABLES  # (ce5b50d's JSON strips stay)
    await check_store(engine)
    reader = HistoryReader(engine)
    assert await reader.states() == STATES  # kept, or filled from the checks
    incidents = await reader.incidents(with_events=True)
    assert [(i.title, i.state, [e.kind for e in i.events]) for i in incidents] == [
        ("Website unreachable", IncidentState.OPEN, ["opened"]),
        ("Database down", IncidentState.RESOLVED, ["opened", "note", "resolved"]),
    ]
    alerts = await reader.alerts(active_only=False)
    assert [(a.target, a.service, a.state) for a in alerts] == [
        ("web", "", AlertState.FIRING),
        ("api", "db", AlertState.RESOLVED),
    ]
    # Announced by the monitor that wrote them: not owed again by the first one after the upgrade.
    assert [a.notified for a in alerts] == [a.state for a in alerts]
    assert await reader.unnotified_alerts() == []
    # The daemon's daily run makes the strips (today's main had made them already); the bars of
    # settled days come from them, those of the days after from the roll-ups.
    writer = HistoryWriter(engine)
    await writer.compact_day_strips(NOW)
    assert await count(engine, "day_strips_v2") == 3
    bars = (await reader.bars_many([("api", "db")], count=3, now=NOW))[("api", "db")]
    assert [(b.checks, b.up, b.worst) for b in bars] == [
        (4, 0, Status.UNHEALTHY),  # SETTLED: the database was down all day
        (4, 3, Status.UNHEALTHY),
        (1, 1, Status.HEALTHY),
    ]
    # And the store takes new history: ids go on where the old monitor left them.
    web = check("web", NOW, Status.HEALTHY, {})
    await writer.record_check(web, replicas=[ReplicaCheck("10.0.0.5:8000", web)])
    assert (await reader.states())[("web", TARGET_COMPONENT)].status is Status.HEALTHY
    assert [(r.target, r.replica) for r in await reader.replicas()] == [("web", "10.0.0.5:8000")]
    lease = await LeaseStore(engine).acquire("m1", ttl=3.0, now=NOW, expected=None)
    assert lease is not None and await reader.leader() == lease
    await writer.open_incident("api", "", Status.DEGRADED, NOW, "Slow")
    assert len(await reader.incidents()) == 3


async def test_states_an_older_program_left_empty_are_filled(
    engine: AsyncEngine, empty_url: str
) -> None:
    """A TUI of today's main made the tables of an older store (``create_all``) and left the
    states empty for its daemon to fill at start; the upgrade fills them instead."""
    await load(engine, empty_url, TODAYS_MAIN)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM component_states"))

    await upgrade_store(engine)

    assert await HistoryReader(engine).states() == STATES


async def test_a_reader_is_told_an_old_store_needs_upgrading(
    engine: AsyncEngine, empty_url: str
) -> None:
    await load(engine, empty_url, TODAYS_MAIN)

    with pytest.raises(StoreSchemaMismatch) as raised:
        await check_store(engine, config="etc/monitor.toml")

    assert raised.value.store_is_older
    assert "questcity store upgrade --config etc/monitor.toml" in str(raised.value)
    assert VERSION_TABLE not in await table_names(engine)  # a reader never upgrades


async def test_a_failed_upgrade_leaves_the_store_as_it_was(
    engine: AsyncEngine, empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load(engine, empty_url, FIRST)
    before = await table_names(engine)

    def fail(connection: Connection) -> int:
        raise RuntimeError("the process died half-way")

    monkeypatch.setattr("monitor.store.migrations.states.backfill_states", fail)
    with pytest.raises(RuntimeError):
        await upgrade_store(engine)

    assert await table_names(engine) == before  # no revisions, no states, no version table
    monkeypatch.undo()
    await upgrade_store(engine)
    assert await HistoryReader(engine).states() == STATES


# -- a store of a newer program -----------------------------------------------------------------


async def test_a_store_at_an_unknown_revision_is_refused(engine: AsyncEngine) -> None:
    await upgrade_store(engine)
    async with engine.begin() as connection:
        await connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0999'"))

    with pytest.raises(StoreSchemaMismatch) as raised:
        await upgrade_store(engine)
    assert not raised.value.store_is_older
    assert raised.value.store_revision == "0999"
    with pytest.raises(StoreSchemaMismatch):
        await check_store(engine)
    async with engine.connect() as connection:
        assert await connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}")) == "0999"


# -- questcity store ----------------------------------------------------------------------------


def questcity(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "questcity", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[storage]\nurl = "{url}"\n\n[[targets]]\nname = "api"\nurl = "http://127.0.0.1:9"\n'
    )
    return path


async def test_store_upgrade_upgrades_an_old_store_and_says_so(
    engine: AsyncEngine, empty_url: str, tmp_path: Path
) -> None:
    await load(engine, empty_url, TODAYS_MAIN)
    await engine.dispose()
    path = config(tmp_path, empty_url)

    current = questcity("store", "current", "--config", str(path), cwd=tmp_path)
    upgrade = questcity("store", "upgrade", "--config", str(path), cwd=tmp_path)
    again = questcity("store", "upgrade", "--config", str(path), cwd=tmp_path)
    now = questcity("store", "current", "--config", str(path), cwd=tmp_path)

    assert (current.returncode, upgrade.returncode, again.returncode, now.returncode) == (0,) * 4
    assert "store revision: 0003 (no version table; recognised from its tables)" in current.stdout
    assert "questcity store upgrade --config" in current.stdout
    assert upgrade.stdout.splitlines() == [
        "store revision before: 0003 (no version table; recognised from its tables)",
        f"store revision after: {head_revision()} (head)",
    ]
    assert again.stdout.splitlines() == [
        f"store revision before: {head_revision()}",
        f"store revision after: {head_revision()} (head)",
    ]
    assert now.stdout == f"store revision: {head_revision()} (head)\n"
    await check_store(engine)


def test_store_current_makes_no_store(tmp_path: Path) -> None:
    path = config(tmp_path, sqlite_url(tmp_path / "var" / "monitor.db"))

    current = questcity("store", "current", "--config", str(path), cwd=tmp_path)

    assert (current.returncode, current.stdout) == (0, "store revision: none (no store file yet)\n")
    assert not (tmp_path / "var").exists()


def test_store_commands_need_only_storage(tmp_path: Path) -> None:
    """A status page's host may keep a monitor.toml of [storage] alone (no [[targets]])."""
    path = tmp_path / "monitor.toml"
    path.write_text(f'[storage]\nurl = "{sqlite_url(tmp_path / "var" / "monitor.db")}"\n')

    before = questcity("store", "current", "--config", str(path), cwd=tmp_path)
    upgrade = questcity("store", "upgrade", "--config", str(path), cwd=tmp_path)
    after = questcity("store", "current", "--config", str(path), cwd=tmp_path)

    assert (before.returncode, upgrade.returncode, after.returncode) == (0, 0, 0), upgrade.stderr
    assert before.stdout == "store revision: none (no store file yet)\n"
    assert upgrade.stdout.splitlines() == [
        "store revision before: none (no tables yet)",
        f"store revision after: {head_revision()} (head)",
    ]
    assert after.stdout == f"store revision: {head_revision()} (head)\n"


def test_store_upgrade_with_a_bad_config_or_no_store_says_why(tmp_path: Path) -> None:
    missing = questcity("store", "upgrade", "--config", "nope.toml", cwd=tmp_path)
    path = config(tmp_path, "postgresql://monitor:hunter2@127.0.0.1:9/monitor")
    unreachable = questcity("store", "upgrade", "--config", str(path), cwd=tmp_path)

    assert missing.returncode == 2
    assert "nope.toml" in missing.stderr
    assert unreachable.returncode == 2
    assert "cannot reach the store" in unreachable.stderr
    for run in (missing, unreachable):
        assert "Traceback" not in run.stderr
        assert run.stdout == ""
    assert "hunter2" not in unreachable.stderr


def test_the_head_written_down_is_alembics_head() -> None:
    assert head_revision() == HEAD_REVISION


def test_a_store_already_at_head_is_opened_without_alembic(tmp_path: Path) -> None:
    """Every daemon start and every `tui --serve` tab prepares the store: when there is nothing
    to do, Alembic (~0.35 s to import) stays unloaded."""
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    program = (
        "import asyncio, sys\n"
        "from monitor.store.engine import create_schema, open_engine\n"
        "async def main():\n"
        f"    engine = open_engine({url!r})\n"
        "    await create_schema(engine)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "True", "a new store is migrated"
    again = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "False", "a store at head needs no Alembic"
