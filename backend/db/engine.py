"""The async engine: PostgreSQL (asyncpg) with the seed's pool in production, SQLite embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, QueuePool

from backend.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings)
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=True,
        # A dead server must fail a connect fast; the breaker bounds whole calls besides.
        connect_args={
            "timeout": 5,
            "command_timeout": 10,
            "server_settings": {
                "application_name": "questcity-backend",
            },
        },
    )


def create_probe_engine(settings: Settings) -> AsyncEngine:
    """An engine for the health check alone: a fresh connection per check, outside the pool.

    The check answers "can we reach the database?"; through the shared pool it would answer "is a
    pooled connection free?", and a traffic burst would read as an outage (and open the breaker).
    """
    url = make_url(settings.database_url)
    connect_args: dict[str, object] = {"timeout": min(5.0, settings.db_timeout)}
    if url.get_backend_name() != "sqlite":
        connect_args["command_timeout"] = settings.db_timeout
        connect_args["server_settings"] = {"application_name": "questcity-health"}
    return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)


def _sqlite_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        pool_size=min(settings.db_pool_size, 5),
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        connect_args={"timeout": 15},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def pool_figures(engine: AsyncEngine) -> dict[str, int]:
    """Size, connections checked out, overflow in use — for /detailed and the pool gauges."""
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        return {
            "size": pool.size(),
            "checked_out": pool.checkedout(),
            "overflow": max(pool.overflow(), 0),
            "max_overflow": pool._max_overflow,
        }
    return {"size": 0, "checked_out": 0, "overflow": 0, "max_overflow": 0}
