"""The ORM models (``backend.db.models``) against the schema the Alembic migrations build, on
SQLite and on a real PostgreSQL: a column or index added to one and not the other fails here."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from backend.db import migrate
from backend.db.models import Base
from tests.support import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/schema.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"qc_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    url: str = server.url_for(database=name)
    return url


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_replicas_starting_together_on_a_fresh_postgresql_migrate_it_once(
    postgres_server: PostgresServer,
) -> None:
    """Three replicas of a deployment upgrade one fresh database at the same moment: each waits
    for the first (an advisory lock) and then finds the schema at head, none fails half-way."""
    import asyncio

    name = f"qc_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    engines = [create_async_engine(postgres_server.url_for(database=name)) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(migrate.upgrade(engine) for engine in engines), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        heads = {await migrate.current_revision(engine) for engine in engines}
        assert len(heads) == 1 and None not in heads
        async with engines[0].connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        for engine in engines:
            await engine.dispose()
