"""One store per test, on each backend: a SQLite file in the test's tmp directory, and a fresh
database on the session's PostgreSQL server (``postgres_server``), dropped after the test.

Every test that asks for ``store`` runs three times: ``[sqlite]`` and ``[postgresql]`` through the
async drivers, and ``[sqlite-threaded]``, whose reader runs each read whole in a worker thread on
a plain SQLite engine (what the status page does). That is the whole contract, one suite over
every implementation.

A test that asks for ``store`` gets a copy of a store migrated once per session (a copied SQLite
file; a PostgreSQL database made with ``createdb --template``, emptied after its test and reused
when its schema is still the template's): running every migration per test cost each PostgreSQL
case ~0.3-0.7 s of set-up, and creating and dropping a database per test ~0.15 s.
``create_schema`` still runs on the copy (it finds the schema at head). A test that asks only
for ``store_url`` gets an empty store, as before.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.store import HistoryReader, create_schema, open_engine
from monitor.store.engine import thread_engine
from monitor.store.writer import HistoryWriter
from tests.monitor.store.support import (
    Store,
    empty_store_url,
    plain_postgres_url,
    sqlite_url,
)
from tests.support import PostgresServer
from tests.support.store_template import ReusedPostgresStores, migrate_store

BACKENDS = ("sqlite", "sqlite-threaded", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store at the head revision, closed (its WAL checkpointed): copied per test."""
    path = tmp_path_factory.mktemp("store-template") / "monitor.db"
    migrate_store(sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def _migrated_postgres(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database at the head revision, no session left on it: a template per test."""
    name = f"monitor_template_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    try:
        migrate_store(plain_postgres_url(postgres_server, name))
        yield name
    finally:
        if postgres_server.running:
            postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def _postgres_stores(
    postgres_server: PostgresServer, _migrated_postgres: str
) -> Iterator[ReusedPostgresStores]:
    """Copies of the template, each emptied after its test and handed to the next one."""
    stores = ReusedPostgresStores(postgres_server, _migrated_postgres)
    try:
        yield stores
    finally:
        stores.close()


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming a store: empty (a new SQLite file, a new PostgreSQL database), or, when the
    test also asks for ``store``, a copy of the session's migrated one."""
    if "store" not in request.fixturenames:
        yield from empty_store_url(backend, request, tmp_path)
    elif backend.startswith("sqlite"):
        path = tmp_path / "monitor.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        yield sqlite_url(path)
    else:
        stores: ReusedPostgresStores = request.getfixturevalue("_postgres_stores")
        server: PostgresServer = request.getfixturevalue("postgres_server")
        name = stores.take()
        try:
            yield plain_postgres_url(server, name)
        finally:
            stores.give_back(name)


@pytest.fixture
async def store(store_url: str, backend: str) -> AsyncIterator[Store]:
    """A fresh store with its schema, a writer and a reader; the engines are disposed after."""
    engine = open_engine(store_url)
    threaded = thread_engine(store_url) if backend == "sqlite-threaded" else None
    await create_schema(engine)
    try:
        yield Store(
            backend=engine.dialect.name,
            url=store_url,
            engine=engine,
            writer=HistoryWriter(engine),
            reader=HistoryReader(engine, threaded=threaded),
        )
    finally:
        await engine.dispose()
        if threaded is not None:
            threaded.dispose()
