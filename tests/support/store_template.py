"""A monitor store migrated once per session, for fixtures to copy instead of migrating per test.

Running every migration costs each new store ~0.1 s on SQLite and ~0.3-0.7 s on PostgreSQL; a
suite that makes hundreds of stores pays minutes for it. A fixture migrates one store per
session with :func:`migrate_store` and hands each test a copy (a copied file, or a database
made with ``createdb --template``, emptied for the next test: :class:`ReusedPostgresStores`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg

from monitor.store import create_schema, open_engine
from questcity.embedded.postgres import PostgresServer

_T = TypeVar("_T")


def migrate_store(url: str) -> None:
    """Bring the store at ``url`` to the head revision, and close every connection to it."""

    async def migrate() -> None:
        engine = open_engine(url)
        try:
            await create_schema(engine)
        finally:
            await engine.dispose()

    # In a thread of its own: asyncio.run on this thread would unset the loop pytest-asyncio set.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, migrate()).result()


# Everything a test could change in a database besides its rows: if any of it differs from the
# template's after a test, the database is dropped rather than emptied and handed out again.
_SHAPE = """
WITH ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%'
)
SELECT md5(coalesce(string_agg(line, E'\\n' ORDER BY line), '')) FROM (
    SELECT 'ns ' || nspname || ' ' || coalesce(n.nspacl::text, '') AS line
    FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM ns)
    UNION ALL
    SELECT 'rel ' || ns.nspname || '.' || c.relname || ' '
        || c.relkind::text || c.relpersistence::text
        || ' ' || coalesce(c.relacl::text, '') || ' ' || coalesce(c.reloptions::text, '')
        || ' ' || CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT 'col ' || ns.nspname || '.' || c.relname || '.' || a.attname || ' '
        || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
        || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || a.attidentity::text
        || a.attgenerated::text || ' ' || coalesce(a.attcollation::text, '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'idx ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN ns ON ns.oid = c.relnamespace
    UNION ALL
    SELECT 'con ' || co.conrelid::regclass::text || ' ' || co.conname || ' '
        || pg_get_constraintdef(co.oid) || ' ' || co.convalidated::text
    FROM pg_constraint co JOIN ns ON ns.oid = co.connamespace
    UNION ALL
    SELECT 'trg ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
    WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'rule ' || r.rulename || ' ' || pg_get_ruledef(r.oid)
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind <> 'v'
    UNION ALL
    SELECT 'fn ' || p.oid::regprocedure::text || ' ' || md5(coalesce(p.prosrc, ''))
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    UNION ALL
    SELECT 'type ' || ty.oid::regtype::text || ' ' || ty.typtype::text
    FROM pg_type ty JOIN ns ON ns.oid = ty.typnamespace
    UNION ALL
    SELECT 'enum ' || e.enumtypid::regtype::text || ' ' || e.enumlabel || ' '
        || e.enumsortorder::text
    FROM pg_enum e
    UNION ALL
    SELECT 'seq ' || s.seqrelid::regclass::text || ' ' || s.seqtypid::regtype::text || ' '
        || s.seqstart || ' ' || s.seqincrement || ' ' || s.seqmin || ' ' || s.seqmax || ' '
        || s.seqcache || ' ' || s.seqcycle::text
    FROM pg_sequence s
    UNION ALL
    SELECT 'ext ' || extname || ' ' || extversion FROM pg_extension
    UNION ALL
    SELECT 'policy ' || polname || ' ' || polrelid::regclass::text FROM pg_policy
    UNION ALL
    SELECT 'setting ' || coalesce(array_to_string(setconfig, ','), '')
    FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    UNION ALL
    SELECT 'largeobject ' || count(*) FROM pg_largeobject_metadata
) AS shape
"""

_TABLES = """
SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename <> $1
"""

_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
"""


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    # In a thread of its own, as migrate_store: fixtures call this from pytest-asyncio's loop too.
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, work).result()


VERSION_TABLE = "monitor_alembic_version"
"""The store's Alembic version table: kept (not emptied), its revision part of the shape."""


async def _shape(connection: asyncpg.Connection) -> str:
    shape = await connection.fetchval(_SHAPE)
    revisions = await connection.fetch(f"SELECT * FROM {VERSION_TABLE}")  # a constant name
    return f"{shape} {sorted(tuple(row) for row in revisions)}"


async def _shape_of(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return await _shape(connection)
    finally:
        await connection.close()


class ReusedPostgresStores:
    """Databases copied from a migrated template (``createdb --template``), each handed back
    emptied for the next test instead of dropped.

    ``CREATE DATABASE`` costs ~0.1-0.2 s on the test server, ``DROP DATABASE`` ~0.03 s; checking
    the shape and emptying the tables ~0.03 s. A database goes back into use only as the template
    is: the same shape (tables, columns, indexes, constraints, triggers, functions, types, sequence
    definitions, grants, settings, the Alembic revision), no session left on it, every table
    emptied and every sequence restarted. Anything else (a test that altered the schema, left a
    connection open, or a server that was stopped) and it is dropped, as before.
    """

    def __init__(self, server: PostgresServer, template: str) -> None:
        self._server = server
        self._template = template
        self._shape = _run(_shape_of(server.dsn_for(database=template)))
        self._free: list[str] = []
        self._made: set[str] = set()

    def take(self) -> str:
        """The name of an empty migrated database, only the caller's until :meth:`give_back`."""
        if self._free:
            return self._free.pop()
        name = f"monitor_{uuid.uuid4().hex[:16]}"
        self._server._client("createdb", "--template", self._template, name)  # no public form
        self._made.add(name)
        return name

    def give_back(self, name: str) -> None:
        """Empty ``name`` for the next test if it is as the template made it; else drop it."""
        if self._server.running and _run(self._empty(name)):
            self._free.append(name)
            return
        self._made.discard(name)
        self._server.drop_database(name)

    def close(self) -> None:
        if self._server.running:
            for name in self._made:
                self._server.drop_database(name)
        self._made.clear()
        self._free.clear()

    async def _empty(self, name: str) -> bool:
        try:
            connection = await asyncpg.connect(self._server.dsn_for(database=name))
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            others = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'"
            )
            if others or await _shape(connection) != self._shape:
                return False
            tables = [row[0] for row in await connection.fetch(_TABLES, VERSION_TABLE)]
            sequences = [row[0] for row in await connection.fetch(_SEQUENCES)]
            superuser = await connection.fetchval("SELECT current_setting('is_superuser')")
            async with connection.transaction():
                if superuser == "on":
                    # DELETE of a few rows is ~6x cheaper than TRUNCATE (new files for every
                    # table and index); foreign keys are not checked, as every table is emptied.
                    await connection.execute("SET LOCAL session_replication_role = replica")
                    for table in tables:
                        await connection.execute(f"DELETE FROM {table}")
                elif tables:
                    await connection.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
                for sequence in sequences:
                    await connection.execute(f"ALTER SEQUENCE {sequence} RESTART")
            return True
        except (OSError, asyncpg.PostgresError):
            return False
        finally:
            await connection.close()
