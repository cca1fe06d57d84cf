"""The catalogue of ``[[checks]]`` (#16), on SQLite and a real PostgreSQL: a check's kind and
whether it is public round-trip; a sync rewrites a check whose config changed (made private, it
stops being public at the next start); revision 0007 over a store of 0006 keeps every row, each
of no kind and public; a status page reading a store of 0006 (or older) before its monitor
upgrades it reads the catalogue it holds, every component public; the subscribers' fan-out
leaves private checks out of whom a message concerns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store import (
    TARGET_COMPONENT,
    Component,
    HistoryReader,
    IncidentComponent,
    Status,
    open_engine,
)
from monitor.store.migrate import StoreUpgrade, alembic_config, upgrade_store
from monitor.store.migrations import HEAD_REVISION
from monitor.store.schema import components, deliveries, public_messages
from monitor.store.writer import HistoryWriter
from tests.monitor.store.public_support import MAJOR, MINOR, T, add_subscriber
from tests.monitor.store.support import DAY0, HOUR, Store, check, empty_store_url, sample

API = Component("api", TARGET_COMPONENT, "API", "Production", 0)
DATABASE = Component("api", "database", "Database", "Production", 1, critical=True)
FRONT = Component("front", TARGET_COMPONENT, "Front door", "Services", 10_000, kind="http",
                  public=True)  # fmt: skip
INTERNAL = Component("internal-db", TARGET_COMPONENT, "internal-db", "Services", 10_001,
                     kind="postgres", public=False)  # fmt: skip


async def test_a_checks_kind_and_publicity_round_trip(store: Store) -> None:
    catalogue = [API, replace(DATABASE, critical=False), FRONT, INTERNAL]

    await store.writer.sync_components(catalogue)

    found = await store.reader.components()
    assert found == catalogue
    assert [(c.kind, c.public) for c in found] == [
        (None, True),
        (None, True),
        ("http", True),
        ("postgres", False),
    ]


async def test_a_sync_rewrites_a_check_whose_config_changed(store: Store) -> None:
    await store.writer.sync_components([API, FRONT, INTERNAL])
    # The next start: the front door made private, renamed and moved; the database check made
    # public and a tls check now.
    private_front = replace(FRONT, display_name="Website", group="Edge", public=False)
    public_internal = replace(INTERNAL, kind="tls", public=True, position=3)

    await store.writer.sync_components([API, private_front, public_internal])

    assert await store.reader.components() == [API, public_internal, private_front]


async def test_a_sync_keeps_the_critical_flag_a_check_found(store: Store) -> None:
    """The config does not know ``critical`` (the backend says it): a sync keeps the stored
    flag and writes the rest, kind and publicity included."""
    await store.writer.record_check(
        check(DAY0, services=(sample("database", Status.HEALTHY),)), new_components=[DATABASE]
    )

    await store.writer.sync_components([API, replace(DATABASE, critical=False), INTERNAL])

    assert await store.reader.components() == [API, DATABASE, INTERNAL]


async def test_a_service_a_check_discovers_is_public_and_of_no_kind(store: Store) -> None:
    await store.writer.sync_components([API, INTERNAL])

    found = Component("api", "s3", "s3", "Production", 2)
    await store.writer.record_check(check(DAY0, services=(sample("s3"),)), new_components=[found])

    stored = {(c.target, c.service): c for c in await store.reader.components()}
    assert (stored[("api", "s3")].kind, stored[("api", "s3")].public) == (None, True)
    assert stored[("internal-db", TARGET_COMPONENT)] == INTERNAL


# -- revision 0007 over a store of 0006 ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_store_url(request.param, request, tmp_path)


async def store_at(url: str, revision: str) -> AsyncEngine:
    """A store as the monitor of ``revision`` left it, with a target, a critical service and a
    plain one in its catalogue."""
    engine = open_engine(url)

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    critical = ", critical" if revision >= "0005" else ""
    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
        for values in (
            "'api', '', 'API', 'Production', 0",
            "'api', 'database', 'Database', 'Production', 1",
            "'api', 's3', 'Photos', 'Production', 2",
        ):
            flag = (", true" if "database" in values else ", false") if critical else ""
            await connection.execute(
                text(
                    "INSERT INTO components"
                    f" (target, service, display_name, group_name, position{critical})"
                    f" VALUES ({values}{flag})"
                )
            )
    return engine


OLD_CATALOGUE = [
    API,
    DATABASE,
    Component("api", "s3", "Photos", "Production", 2),
]


@pytest.fixture
async def store_of_0006(empty_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await store_at(empty_url, "0006")
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_revision_0007_keeps_a_0006_catalogue_every_row_public(
    store_of_0006: AsyncEngine,
) -> None:
    engine = store_of_0006
    # A status page upgraded before its monitor reads the old catalogue as it is: every
    # component public, none a check.
    assert await HistoryReader(engine).components() == OLD_CATALOGUE

    done = await upgrade_store(engine)

    assert done == StoreUpgrade(before="0006", after=HEAD_REVISION, recognised=False)
    assert HEAD_REVISION == "0007"
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(components.c.service, components.c.kind, components.c.public).order_by(
                    components.c.position
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("", None, True), ("database", None, True),
                                        ("s3", None, True)]  # fmt: skip
    reader = HistoryReader(engine)
    assert await reader.components() == OLD_CATALOGUE
    # And takes the new writes: the daemon of #16 adds a private check.
    await HistoryWriter(engine).sync_components([*OLD_CATALOGUE, INTERNAL])
    assert await reader.components() == [*OLD_CATALOGUE, INTERNAL]


async def test_a_store_of_0004_reads_as_a_catalogue_none_critical_all_public(
    empty_url: str,
) -> None:
    """Two revisions behind (no ``critical`` either): the page still reads its catalogue."""
    engine = await store_at(empty_url, "0004")
    try:
        found = await HistoryReader(engine).components()
    finally:
        await engine.dispose()

    assert found == [API, replace(DATABASE, critical=False), OLD_CATALOGUE[2]]


# -- the subscribers' fan-out ---------------------------------------------------------------------


async def test_fan_out_leaves_private_checks_out_of_whom_a_message_concerns(store: Store) -> None:
    """A message about private checks alone reaches nobody (not everyone, as one about no
    component in particular does); one naming a public component too reaches its followers and
    those of everything, not a private check's follower (who followed it while it was public)."""
    await store.writer.sync_components([API, FRONT, replace(INTERNAL, public=True)])
    everyone = await add_subscriber(store, "all@example.org")
    front = await add_subscriber(store, "front@example.org", components='["front"]')
    internal = await add_subscriber(store, "db@example.org", components='["internal-db"]')
    # Queued while the database check was public; fanned out once the next start made it private.
    await store.writer.open_written_incident(
        "Ledger", [IncidentComponent("internal-db", "", MAJOR)], "Down.", "alice", T
    )
    await store.writer.sync_components([API, FRONT, INTERNAL])
    await store.writer.open_written_incident(
        "Both",
        [IncidentComponent("internal-db", "", MAJOR), IncidentComponent("front", "", MINOR)],
        "Slow.",
        "alice",
        T + 1,
    )
    await store.writer.schedule_maintenance("All", [], T + HOUR, T + 2 * HOUR, None, "alice", T)

    assert await store.writer.fan_out(T + 5) == 3

    async with store.engine.connect() as connection:
        made = (
            await connection.execute(
                select(deliveries.c.message_id, deliveries.c.subscriber_id).order_by(
                    deliveries.c.message_id, deliveries.c.subscriber_id
                )
            )
        ).all()
        left = await connection.scalar(
            select(func.count()).where(public_messages.c.fanned_out_at.is_(None))
        )
    assert [tuple(r) for r in made] == [
        (2, everyone),
        (2, front),
        (3, everyone),
        (3, front),
        (3, internal),
    ]
    assert left == 0  # the first is done with: fanned out to nobody, never again
