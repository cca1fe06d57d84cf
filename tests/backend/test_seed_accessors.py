"""The seed's module-level accessors reach the running backend's own objects.

Code written as the seed shows it (``get_circuit_breaker("database")``, ``@circuit_breaker(
"database")`` applied at import time, ``get_health_checker().is_service_available("database")``)
must see the app's breaker and the app's checks while the app runs, not a second, empty set; and
whatever was the default before the app started is the default again once it stops.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backend.app import create_app
from backend.resilience import database_dependency
from backend.settings import Settings
from backend.state import AppState
from backend.storage import InMemoryObjectStore
from shared.resilience import (
    DATABASE_CIRCUIT_BREAKER_CONFIG,
    CircuitBreakerOpenError,
    CircuitState,
    HealthChecker,
    PolicyRegistry,
    as_process_defaults,
    circuit_breaker,
    default_registry,
    get_circuit_breaker,
    retry_with_backoff,
)
from shared.resilience.health_check import get_health_checker
from shared.resilience.testing import FakeClock, waits_disabled
from tests.support.polling import eventually

# Decorated at import time, long before any app starts, and following the process's default
# registry. A throwaway default stands in for the process's own here, so that this module leaves
# no "database" breaker of its own behind for other tests.
_IMPORT_TIME = PolicyRegistry()
with as_process_defaults(registry=_IMPORT_TIME, checker=HealthChecker()):
    calls: list[str] = []

    @circuit_breaker("database")
    async def seed_style_query(outcome: str) -> str:
        calls.append(outcome)
        if outcome == "down":
            raise ConnectionRefusedError(111, "Connection refused")
        return outcome

    @retry_with_backoff(name="seed-style-retried")
    @circuit_breaker("database")
    async def seed_style_retried_query() -> str:
        calls.append("retried")
        raise ConnectionRefusedError(111, "Connection refused")


# As the seed writes it, with the preset: decorated in a process whose own "database" breaker
# (made by the first use) has that preset.
with as_process_defaults(registry=PolicyRegistry(), checker=HealthChecker()):

    @circuit_breaker("database", DATABASE_CIRCUIT_BREAKER_CONFIG)
    async def seed_style_configured_query() -> str:
        return "configured"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key pair for the module's apps (made by the first, read by the others)."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def outer() -> Iterator[tuple[PolicyRegistry, HealthChecker]]:
    """The defaults in place before the app starts (so the process's own stay untouched)."""
    registry, checker = PolicyRegistry(), HealthChecker()
    with as_process_defaults(registry=registry, checker=checker):
        yield registry, checker


def settings_for(tmp_path: Path, keys_dir: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", keys_dir=keys_dir)


@contextlib.asynccontextmanager
async def running(
    settings: Settings, store: InMemoryObjectStore | None = None
) -> AsyncIterator[AppState]:
    store = store if store is not None else InMemoryObjectStore()
    app = create_app(settings, clock=FakeClock(), object_store=store)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.questcity

        async def ready() -> bool:
            return state.lifecycle.ready

        # Not before: a test that ends while the start-up migrations run on SQLite leaves
        # aiosqlite's thread posting their result to a loop pytest has closed by then.
        await eventually(ready, "the app is ready (keys, migrations, first round of checks)")
        yield state


def app_breaker(state: AppState) -> object:
    return state.registry.find_circuit_breaker("database")


async def test_get_circuit_breaker_is_the_apps_breaker_while_it_runs(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    settings = settings_for(tmp_path, keys_dir)
    async with running(settings) as state:
        breaker = get_circuit_breaker("database")
        assert breaker is app_breaker(state), "a second breaker apart from the app's"
        assert breaker.config == database_dependency(settings).breaker
        assert default_registry() is state.registry
    outer_registry, _ = outer
    assert default_registry() is outer_registry, "the previous default is back once it stops"
    assert get_circuit_breaker("database") is not breaker


async def test_get_health_checker_answers_from_the_apps_checks(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    store = InMemoryObjectStore()
    async with running(settings_for(tmp_path, keys_dir), store) as state:
        checker = get_health_checker()
        assert checker is state.checker
        await state.checker.wait_first_round()
        assert checker.is_service_available("database")  # on main: UnknownServiceError
        assert checker.is_service_available("s3")

        store.unavailable = True  # S3 goes down: the app's checks find out
        for _ in range(3):  # the app's S3 check is unhealthy after three failures in a row
            await state.checker.check_now("s3")
        assert not get_health_checker().is_service_available("s3")

        state.registry.circuit_breaker("database").force_open()
        assert not get_health_checker().is_service_available("database")
    _, outer_checker = outer
    assert get_health_checker() is outer_checker


async def test_a_decorator_applied_at_import_time_calls_through_the_apps_breaker(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    async with running(settings_for(tmp_path, keys_dir)) as state:
        app_database = state.registry.circuit_breaker("database")
        assert await seed_style_query("up") == "up"
        assert seed_style_query.circuit_breaker is app_database  # type: ignore[attr-defined]
        threshold = app_database.config.failure_threshold
        for _ in range(threshold):
            with pytest.raises(ConnectionRefusedError):
                await seed_style_query("down")
        assert app_database.state is CircuitState.OPEN, "the app's breaker counted the failures"
        calls.clear()
        with pytest.raises(CircuitBreakerOpenError):
            await seed_style_query("up")
        assert calls == [], "refused by the app's open breaker: the query never ran"

    # Stopped: the decorated function follows the default again, with none of the app's state.
    outer_registry, _ = outer
    assert await seed_style_query("up") == "up"
    assert seed_style_query.circuit_breaker is outer_registry.find_circuit_breaker("database")  # type: ignore[attr-defined]
    assert outer_registry.circuit_breaker("database").state is CircuitState.CLOSED


async def test_stacked_decorators_retry_through_the_apps_breaker(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    async with running(settings_for(tmp_path, keys_dir)) as state:
        app_database = state.registry.circuit_breaker("database")
        before = app_database.metrics.failed_calls
        calls.clear()
        with waits_disabled(), pytest.raises(ConnectionRefusedError):
            await seed_style_retried_query()
        attempts = len(calls)
        assert attempts == 3, "the retry's three attempts"
        assert app_database.metrics.failed_calls - before == attempts
        assert app_database.state is CircuitState.OPEN


async def test_two_apps_at_once_the_latest_running_one_is_the_default(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = running(settings_for(tmp_path / "a", keys_dir))
    second = running(settings_for(tmp_path / "b", keys_dir))
    a = await first.__aenter__()
    first_stopped = False
    try:
        assert get_circuit_breaker("database") is app_breaker(a)
        b = await second.__aenter__()
        try:
            assert get_circuit_breaker("database") is app_breaker(b)
            assert get_health_checker() is b.checker

            # The first app stops while the second still runs: the second stays the default.
            first_stopped = True
            await first.__aexit__(None, None, None)
            assert get_circuit_breaker("database") is app_breaker(b)
            assert get_health_checker() is b.checker
        finally:
            await second.__aexit__(None, None, None)
    finally:
        if not first_stopped:
            await first.__aexit__(None, None, None)
    outer_registry, outer_checker = outer
    assert default_registry() is outer_registry
    assert get_health_checker() is outer_checker


async def test_a_decorator_with_the_seeds_preset_goes_through_the_apps_breaker(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    """The app's database breaker has its own timeout and failure rule, so the preset differs:
    the call still runs, through the app's one breaker of that name."""
    async with running(settings_for(tmp_path, keys_dir)) as state:
        app_database = state.registry.circuit_breaker("database")
        assert app_database.config != DATABASE_CIRCUIT_BREAKER_CONFIG
        before = app_database.metrics.successful_calls
        assert await seed_style_configured_query() == "configured"
        assert seed_style_configured_query.circuit_breaker is app_database  # type: ignore[attr-defined]
        assert app_database.metrics.successful_calls == before + 1


async def test_seed_style_code_run_while_the_app_runs_reaches_its_breaker(
    tmp_path: Path, keys_dir: Path, outer: tuple[PolicyRegistry, HealthChecker]
) -> None:
    """A module imported late (while the backend serves) and asking with the seed's preset."""
    async with running(settings_for(tmp_path, keys_dir)) as state:
        app_database = state.registry.circuit_breaker("database")
        assert get_circuit_breaker("database", DATABASE_CIRCUIT_BREAKER_CONFIG) is app_database

        @circuit_breaker("database", DATABASE_CIRCUIT_BREAKER_CONFIG)
        async def late() -> str:
            return "late"

        assert await late() == "late"
        assert late.circuit_breaker is app_database  # type: ignore[attr-defined]
