"""Fixtures for the monitor's tests: one store migrated per session, for tests to copy
(:func:`tests.monitor.store.support.migrated_store_url`) instead of migrating per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitor.store.support import plain_postgres_url, sqlite_url
from tests.support import PostgresServer
from tests.support.store_template import ReusedPostgresStores, migrate_store


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
