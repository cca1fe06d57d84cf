"""The throwaway PostgreSQL server: real connections, databases, a crash and a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.support import PostgresNotInstalledError, PostgresServer, ServerStartError
from tests.support.postgres import BIN_DIR_ENV


async def test_select_one_with_the_password(postgres_server: PostgresServer) -> None:
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == postgres_server.database
    finally:
        await conn.close()


async def test_the_password_is_checked(postgres_server: PostgresServer) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres_server.dsn, password="not-the-password")


def test_urls(postgres_server: PostgresServer) -> None:
    server = postgres_server
    assert server.url == (
        f"postgresql+asyncpg://questcity:questcity-test-password@127.0.0.1:{server.port}/questcity"
    )
    assert server.dsn == server.url.replace("postgresql+asyncpg://", "postgresql://")
    assert server.dsn_for(database="x", address=("127.0.0.1", 1)).endswith("@127.0.0.1:1/x")


async def test_create_and_drop_a_database(postgres_server: PostgresServer) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"

    dsn = postgres_server.create_database(name)

    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
    finally:
        await conn.close()
    postgres_server.drop_database(name)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(dsn)


async def test_kill_is_a_crash_and_restart_recovers(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        await conn.execute("CREATE TABLE survivors (name text); INSERT INTO survivors VALUES ('a')")

        postgres_server.kill()

        assert not postgres_server.running
        with pytest.raises((ConnectionError, asyncpg.ConnectionDoesNotExistError)):
            await conn.fetchval("SELECT 1")
        with pytest.raises(ConnectionRefusedError):
            await asyncpg.connect(postgres_server.dsn)
    finally:
        conn.terminate()

    postgres_server.restart()

    assert postgres_server.port == port
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        assert await conn.fetchval("SELECT name FROM survivors") == "a"
        await conn.execute("DROP TABLE survivors")
    finally:
        await conn.close()


def test_stop_is_a_clean_shutdown(postgres_server: PostgresServer) -> None:
    postgres_server.stop()

    assert not postgres_server.running
    assert "database system is shut down" in postgres_server.log_path.read_text()
    # the server is started again after the test (tests/conftest.py)


def test_missing_binaries_say_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BIN_DIR_ENV, str(tmp_path))

    with pytest.raises(PostgresNotInstalledError, match="scripts/ensure-system-deps"):
        PostgresServer().start()


def test_a_failed_start_shows_the_log_and_leaves_nothing() -> None:
    server = PostgresServer(settings={"max_connections": "many"})

    with pytest.raises(ServerStartError, match='invalid value for parameter "max_connections"'):
        server.start()

    assert not server.running
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.base_dir  # its temporary directory is gone
