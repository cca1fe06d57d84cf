"""The seed's configuration values, pinned where they take effect.

The seed (its "Configuration" section; docs/ARCHITECTURE.md §4 and §5 repeat it) says::

  PostgreSQL pool: pool_size=20, max_overflow=30, pool_timeout=30, pool_recycle=3600,
  pool_pre_ping=True.

  DATABASE_RETRY_CONFIG = RetryConfig(max_attempts=3, base_delay=0.5, max_delay=10.0, timeout=30.0)
  S3_RETRY_CONFIG = RetryConfig(max_attempts=5, base_delay=1.0, max_delay=30.0, timeout=60.0)
  DATABASE_CIRCUIT_BREAKER_CONFIG = CircuitBreakerConfig(
      failure_threshold=3,    # failures to open
      recovery_timeout=30.0,  # time before trying to recover
      success_threshold=2,    # successes to close
      timeout=10.0,           # operation timeout
  )

The seed gives no S3 breaker; ``shared/resilience/presets.py`` documents ours: it tolerates more
failures than the database's (S3 is not critical) and allows slower calls (object uploads).

The pool is checked on the engine the backend builds from its settings (``create_app``), not on
the settings' defaults alone, so a value dropped on the way to SQLAlchemy is caught.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool
from starlette.applications import Starlette

from backend.app import create_app
from backend.settings import Settings
from backend.state import AppState
from backend.storage import InMemoryObjectStore
from shared.resilience import (
    DATABASE_CIRCUIT_BREAKER_CONFIG,
    DATABASE_RETRY_CONFIG,
    S3_CIRCUIT_BREAKER_CONFIG,
    S3_RETRY_CONFIG,
    CircuitBreakerConfig,
)

POSTGRES_URL = "postgresql+asyncpg://questcity:secret@127.0.0.1:1/questcity"
"""Nothing listens there: building the app opens no connection (that waits for its lifespan)."""


def built(tmp_path: Path, environ: Mapping[str, str]) -> Starlette:
    """The app as ``questcity serve`` builds it from these environment variables."""
    settings = Settings.from_env(
        {"QUESTCITY_KEYS_DIR": str(tmp_path / "keys"), **environ}, env_file=None
    )
    return create_app(settings, object_store=InMemoryObjectStore())


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.questcity
    return state


@pytest.fixture
async def postgres_app(tmp_path: Path) -> AsyncIterator[Starlette]:
    app = built(tmp_path, {"QUESTCITY_DATABASE_URL": POSTGRES_URL})
    yield app
    await state_of(app).database.engine.dispose()


def pool_of(app: Starlette) -> QueuePool:
    pool = state_of(app).database.engine.sync_engine.pool
    assert isinstance(pool, QueuePool), type(pool)
    return pool


# -- the PostgreSQL pool -------------------------------------------------------------------------


def test_the_backends_postgresql_pool_has_the_seeds_size_and_overflow(
    postgres_app: Starlette,
) -> None:
    pool = pool_of(postgres_app)

    assert pool.size() == 20
    assert pool._max_overflow == 30  # SQLAlchemy keeps these only as attributes


def test_the_backends_postgresql_pool_waits_30_s_and_recycles_hourly(
    postgres_app: Starlette,
) -> None:
    pool = pool_of(postgres_app)

    assert pool._timeout == 30
    assert pool._recycle == 3600


def test_the_backends_postgresql_pool_pings_a_connection_before_use(
    postgres_app: Starlette,
) -> None:
    assert pool_of(postgres_app)._pre_ping is True


async def test_pool_settings_from_the_environment_reach_the_engine(tmp_path: Path) -> None:
    app = built(
        tmp_path,
        {
            "QUESTCITY_DATABASE_URL": POSTGRES_URL,
            "QUESTCITY_DB_POOL_SIZE": "7",
            "QUESTCITY_DB_MAX_OVERFLOW": "3",
            "QUESTCITY_DB_POOL_TIMEOUT": "4",
            "QUESTCITY_DB_POOL_RECYCLE": "600",
        },
    )
    try:
        pool = pool_of(app)
        assert (pool.size(), pool._max_overflow, pool._timeout, pool._recycle) == (7, 3, 4, 600)
    finally:
        await state_of(app).database.engine.dispose()


# -- the presets (shared.resilience) -------------------------------------------------------------


def test_the_database_retry_preset_has_the_seeds_values() -> None:
    config = DATABASE_RETRY_CONFIG

    assert (config.max_attempts, config.base_delay, config.max_delay, config.timeout) == (
        3,
        0.5,
        10.0,
        30.0,
    )


def test_the_s3_retry_preset_has_the_seeds_values() -> None:
    config = S3_RETRY_CONFIG

    assert (config.max_attempts, config.base_delay, config.max_delay, config.timeout) == (
        5,
        1.0,
        30.0,
        60.0,
    )


def breaker_values(config: CircuitBreakerConfig) -> tuple[int, float, int, float | None]:
    return (
        config.failure_threshold,
        config.recovery_timeout,
        config.success_threshold,
        config.timeout,
    )


def test_the_database_breaker_preset_has_the_seeds_values() -> None:
    assert breaker_values(DATABASE_CIRCUIT_BREAKER_CONFIG) == (3, 30.0, 2, 10.0)


def test_the_s3_breaker_preset_is_more_tolerant_and_slower_than_the_databases() -> None:
    # Not the seed's (it has none): presets.py's own, pinned so a change is a decision.
    assert breaker_values(S3_CIRCUIT_BREAKER_CONFIG) == (5, 30.0, 2, 20.0)
    assert S3_CIRCUIT_BREAKER_CONFIG.failure_threshold > (
        DATABASE_CIRCUIT_BREAKER_CONFIG.failure_threshold
    )


# -- the presets as the running backend uses them --------------------------------------------------


@pytest.mark.parametrize(
    ("service", "preset"),
    [("database", DATABASE_CIRCUIT_BREAKER_CONFIG), ("s3", S3_CIRCUIT_BREAKER_CONFIG)],
    ids=["database", "s3"],
)
async def test_the_backends_breakers_are_built_from_the_presets(
    tmp_path: Path, service: str, preset: CircuitBreakerConfig
) -> None:
    # Default settings: QUESTCITY_DB_TIMEOUT and QUESTCITY_S3_TIMEOUT equal the presets' timeouts.
    app = built(tmp_path, {"QUESTCITY_DATABASE_URL": POSTGRES_URL})
    try:
        breaker = state_of(app).registry.find_circuit_breaker(service)
        assert breaker is not None
        assert breaker_values(breaker.config) == breaker_values(preset)
    finally:
        await state_of(app).database.engine.dispose()
