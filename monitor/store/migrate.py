"""The store's schema by Alembic migrations (:mod:`monitor.store.migrations`): applying them, and
reading which revision a store is at.

Writers (the daemon at start, the TUI, ``questcity store upgrade``) upgrade. Readers that never
write (the status page) neither upgrade nor check: a rolling deploy upgrades a status page on its
own, before or after the monitor, so it reads a store of an older schema as it finds it, and what
it lacks reaches it from the read itself as :class:`~monitor.store.errors.StoreNotInitialised` (a
table) or :class:`~monitor.store.errors.StoreSchemaMismatch` (a column), which it works around
(:mod:`monitor.store.reading.day_strips`, :mod:`statuspage.source`). ``questcity store
current`` reports a store's revision with :func:`store_revision`. A database's own errors leave
as :mod:`monitor.store.errors` ones (:mod:`monitor.store.failures`).

A store made before the migrations existed has no version table; its tables say which revision
it is at (:func:`recognised_revision`), and it is stamped there and upgraded in place.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.errors import StoreSchemaMismatch
from monitor.store.failures import DRIVER_ERRORS, translate
from monitor.store.migrations import VERSION_TABLE

MIGRATIONS = Path(__file__).with_name("migrations")

_LOCK = 0x6D6F6E69746F72  # "monitor": one upgrade of a PostgreSQL store at a time


@dataclass(frozen=True, slots=True)
class StoreUpgrade:
    before: str | None
    """The store's revision before: None for a store with no tables."""
    after: str
    recognised: bool
    """Whether ``before`` was read from the tables of a store made before the migrations."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this program's store schema is at."""
    head = _script().get_current_head()
    assert head is not None  # (there are revisions, in one line)
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def recognised_revision(tables: Collection[str]) -> str | None:
    """The revision of a store made before the migrations existed, from the tables it has (None:
    before every revision, and the first one's tables that are missing get made)."""
    if "day_strips_v2" in tables:
        return "0003"
    if "component_states" in tables:
        return "0002"
    if "revisions" in tables:
        return "0001"
    return None


async def upgrade_store(engine: AsyncEngine) -> StoreUpgrade:
    """Bring the store to this program's revision, in one transaction (all of it or nothing); a
    no-op when it is there. Raises :class:`StoreSchemaMismatch` for a store at a revision this
    program does not know (a newer program's), which it leaves as it is."""

    def run(connection: Connection) -> StoreUpgrade:
        if connection.dialect.name == "postgresql":
            # Two daemons starting at once: the second waits, then finds the store upgraded.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        config = alembic_config()
        config.attributes["connection"] = connection
        before = _stored_revision(connection)
        recognised = False
        tables: set[str] = set()
        if before is None:
            tables = set(inspect(connection).get_table_names())
            if "checks" in tables:  # made before the migrations
                recognised = True
                before = recognised_revision(tables)
                if before is not None:
                    command.stamp(config, before)
        elif before not in known_revisions():
            raise StoreSchemaMismatch(
                store_revision=before, code_revision=head_revision(), store_is_older=False
            )
        command.upgrade(config, "head")
        if recognised and "component_states" in tables:
            # An older TUI made this table without filling it (its daemon filled it at start).
            from monitor.store.migrations.states import backfill_states

            backfill_states(connection)
        return StoreUpgrade(before=before, after=head_revision(), recognised=recognised)

    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                # pysqlite runs DDL outside any transaction unless one is open: open it, and take
                # the write lock first, so a second writer waits (busy_timeout) rather than
                # failing half-way.
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            return await connection.run_sync(run)
    except DRIVER_ERRORS as error:
        raise translate(error) from error


@dataclass(frozen=True, slots=True)
class StoreRevision:
    revision: str | None
    """As the version table says, or as the tables say (``recognised``); None for a store with
    no tables, or one of the very first version (before revision 0001)."""
    recognised: bool
    """Made before the migrations: no version table, and ``revision`` read from its tables."""
    initialised: bool
    """Whether the store has tables at all."""


async def store_revision(engine: AsyncEngine) -> StoreRevision:
    """Which revision the store is at, without changing it."""
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    except DRIVER_ERRORS as error:
        raise translate(error) from error


def _revision_of(connection: Connection) -> StoreRevision:
    revision = _stored_revision(connection)
    if revision is not None:
        return StoreRevision(revision, recognised=False, initialised=True)
    tables = set(inspect(connection).get_table_names())
    if "checks" not in tables:
        return StoreRevision(None, recognised=False, initialised=False)
    return StoreRevision(recognised_revision(tables), recognised=True, initialised=True)


def _stored_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()
