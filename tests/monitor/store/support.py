"""For the store tests: the store a test gets, its URLs, and builders of checks at chosen times."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store import CheckRecord, HistoryReader, ServiceSample, Status
from monitor.store.writer import HistoryWriter
from tests.support import PostgresServer
from tests.support.store_template import ReusedPostgresStores

HOUR = 3600.0
DAY = 86400.0
DAY0 = 1_767_225_600.0
"""2026-01-01T00:00:00Z: a day (and hour) boundary, so periods are easy to reason about."""


@dataclass(frozen=True)
class Store:
    backend: str
    """``sqlite`` or ``postgresql`` (the engine's dialect)."""
    url: str
    """The plain URL ``monitor.toml`` would name (``sqlite:///…``, ``postgresql://…``)."""
    engine: AsyncEngine
    writer: HistoryWriter
    reader: HistoryReader


def reading_engine(store: Store) -> Engine:
    """The engine whose statements the reader sends (for tests that watch them)."""
    return store.reader.threaded or store.engine.sync_engine


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def plain_postgres_url(server: PostgresServer, database: str) -> str:
    """``open_engine`` wants ``postgresql://``; the server hands out ``postgresql+asyncpg://``."""
    return server.url_for(database=database).replace("postgresql+asyncpg://", "postgresql://", 1)


def empty_store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """For a fixture to ``yield from``: the URL of an empty store, a new SQLite file (``backend``
    ``sqlite…``) or a new database on the session's PostgreSQL server (dropped afterwards)."""
    if backend.startswith("sqlite"):
        yield sqlite_url(tmp_path / "monitor.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"monitor_{uuid.uuid4().hex[:16]}"
    server.create_database(name)
    try:
        yield plain_postgres_url(server, name)
    finally:
        server.drop_database(name)


def migrated_store_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """For a fixture to ``yield from``: the URL of a copy of the session's migrated store (the
    fixtures of ``tests/monitor/conftest.py``), a copied SQLite file (``backend`` ``sqlite…``) or
    a PostgreSQL database from :class:`~tests.support.store_template.ReusedPostgresStores`.
    Running every migration per test cost ~0.05 s on SQLite and ~0.3-0.7 s on PostgreSQL;
    ``create_schema`` on the copy finds it at head (the migrations are test_migrations')."""
    if backend.startswith("sqlite"):
        path = tmp_path / "monitor.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        yield sqlite_url(path)
        return
    stores: ReusedPostgresStores = request.getfixturevalue("_postgres_stores")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = stores.take()
    try:
        yield plain_postgres_url(server, name)
    finally:
        stores.give_back(name)


def sample(
    service: str,
    status: Status = Status.HEALTHY,
    *,
    response_ms: float | None = 5.0,
    consecutive_failures: int | None = 0,
    breaker_state: str | None = "closed",
    details: Mapping[str, object] | None = None,
) -> ServiceSample:
    return ServiceSample(
        service=service,
        status=status,
        response_ms=response_ms,
        consecutive_failures=consecutive_failures,
        breaker_state=breaker_state,
        details=dict(details or {}),
    )


def check(
    at: float,
    status: Status = Status.HEALTHY,
    *,
    target: str = "api",
    latency_ms: float | None = 10.0,
    http_status: int | None = 200,
    error: str | None = None,
    services: tuple[ServiceSample, ...] = (),
) -> CheckRecord:
    return CheckRecord(
        target=target,
        at=at,
        status=status,
        latency_ms=latency_ms,
        http_status=http_status,
        error=error,
        services=services,
    )
