"""The composition root: ``create_app(settings)`` builds the whole backend and its lifespan.

Start-up (the seed's ``app.py``): signing keys checked or created → breakers and the health checker
with the database and S3 checks → migrations (retried in the background while the database is
down: the process still starts and answers liveness) → ready after the first round of checks.
Shutdown: readiness turns 503 at once; uvicorn lets in-flight requests finish within the grace
period; then the checker, the storage client and the engine close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from backend.api import accounts, health, images, quests
from backend.api.body_limits import BodyLimitMiddleware
from backend.api.common import JSON_BODY_LIMIT
from backend.api.errors import (
    ApiError,
    api_error_handler,
    budget_spent_handler,
    http_exception_handler,
    unexpected_error_handler,
)
from backend.api.openapi import openapi_endpoint
from backend.auth import TokenService, load_or_create_keys, username_keys
from backend.auth.defences import AccountDefences
from backend.db import migrate
from backend.db.database import Database
from backend.db.engine import create_engine, create_probe_engine
from backend.db.gate import PoolGate
from backend.degradation import LastGoodCache
from backend.observability import (
    BackendInstance,
    Metrics,
    RequestMetricsMiddleware,
    classify_outcome,
)
from backend.request_budget import RequestBudgetMiddleware
from backend.resilience import database_dependency, s3_dependency
from backend.settings import Settings
from backend.state import AppState
from backend.storage import ObjectStorage, ObjectStore, S3ObjectStore
from shared.resilience import (
    SYSTEM_CLOCK,
    Clock,
    HealthChecker,
    Jitter,
    PolicyRegistry,
    RequestDeadlineError,
    RetryConfig,
    as_process_defaults,
)
from shared.resilience.jsonlog import log_fields

logger = logging.getLogger("backend")

# Start-up work that waits for a dependency retries forever, spaced like this.
_STARTUP_RETRY = RetryConfig(
    max_attempts=1_000_000,
    base_delay=0.5,
    max_delay=10.0,
    timeout=None,
    jitter=Jitter.FULL,
    retry_on=Exception,
)


def routes() -> list[Route]:
    return [
        *health.routes,
        *accounts.routes,
        *quests.routes,
        *images.routes,
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    ]


def create_app(
    settings: Settings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    object_store: ObjectStore | None = None,
) -> Starlette:
    """The ASGI application. Nothing is opened until its lifespan starts."""
    instance = BackendInstance.starting_now(settings.instance_id, clock)
    registry = PolicyRegistry(clock)
    checker = HealthChecker(clock=clock)
    metrics = Metrics(CollectorRegistry(), policies=registry, checker=checker)
    engine = create_engine(settings)
    capacity = settings.db_pool_size + settings.db_max_overflow
    if settings.is_sqlite:
        capacity = min(settings.db_pool_size, 5)
    gate = PoolGate(
        capacity,
        max_waiting=capacity,
        wait_timeout=min(settings.db_pool_timeout, 5.0),
        on_exhausted=metrics.on_pool_exhausted,
        clock=clock,
    )
    database = Database(engine, gate, create_probe_engine(settings))
    metrics.set_pool_stats(database.figures)
    state = AppState(
        settings=settings,
        clock=clock,
        registry=registry,
        checker=checker,
        metrics=metrics,
        database=database,
        defences=AccountDefences.create(clock.monotonic, clock=clock),
        cache=LastGoodCache(clock=clock),
    )
    database.attach(
        database_dependency(settings).bind(
            check=database.ping,
            checker=checker,
            registry=registry,
            details=database.figures,
            observer=metrics.observer,
        )
    )
    store = object_store
    if store is None and settings.s3_configured:
        store = S3ObjectStore.from_settings(
            settings,
            connect_timeout=min(2.0, settings.s3_timeout),
            read_timeout=settings.s3_timeout,
            clock=clock,
        )
    if store is not None:

        def count_s3(operation: str, error: BaseException | None) -> None:
            metrics.record_s3_operation(operation, classify_outcome(error))

        storage = ObjectStorage(store, count=count_s3)
        storage.attach(
            s3_dependency(settings).bind(
                check=storage.ping,
                checker=checker,
                registry=registry,
                observer=metrics.observer,
            )
        )
        state.storage = storage

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # While it runs, the seed's accessors (get_circuit_breaker, @circuit_breaker,
        # get_health_checker) reach this app's breakers and checks, and every JSON log line
        # names this process.
        with (
            as_process_defaults(registry=registry, checker=checker),
            log_fields(instance=instance.id),
        ):
            tasks = await _start(state)
            try:
                yield
            finally:
                await _stop(state, tasks)

    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(RequestBudgetMiddleware, seconds=settings.request_timeout, clock=clock),
            Middleware(RequestMetricsMiddleware, metrics=metrics),
            Middleware(
                BodyLimitMiddleware,
                default=JSON_BODY_LIMIT,
                allowances=images.upload_allowances(settings.max_upload_bytes),
                clock=clock,
            ),
        ],
        exception_handlers={
            ApiError: api_error_handler,
            RequestDeadlineError: budget_spent_handler,
            HTTPException: http_exception_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.questcity = state
    app.state.instance = instance
    return app


async def _start(state: AppState) -> list[asyncio.Task[None]]:
    settings = state.settings
    keys = await asyncio.to_thread(load_or_create_keys, settings.keys_dir)
    state.tokens = TokenService(keys, issuer=settings.token_issuer, clock=state.clock)
    state.lifecycle.keys_ready = True
    if state.storage is not None:
        await state.storage.start()
    await state.checker.start()
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(_migrate_until_done(state), name="migrations"),
        loop.create_task(_first_round(state), name="first-health-round"),
    ]
    if state.storage is not None:
        tasks.append(loop.create_task(_ensure_bucket(state), name="ensure-bucket"))
    return tasks


async def _stop(state: AppState, tasks: list[asyncio.Task[None]]) -> None:
    state.lifecycle.draining = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await state.background.close()
    await state.checker.stop()
    if state.storage is not None:
        await state.storage.close()
    await state.database.close()


async def _until_done(state: AppState, name: str, work: Callable[[], Awaitable[None]]) -> None:
    policy = state.registry.retry_policy(f"startup-{name}", _STARTUP_RETRY)
    await policy.call(work)


async def _migrate_until_done(state: AppState) -> None:
    await _until_done(state, "migrations", lambda: migrate.upgrade(state.database.engine))
    await username_keys.fill_missing(state.database, limit=100_000)  # rows of older pods
    state.lifecycle.migrated = True
    logger.info("database schema is up to date", extra={"event": "migrated"})


async def _first_round(state: AppState) -> None:
    await state.checker.wait_first_round()
    state.lifecycle.first_round_done = True


async def _ensure_bucket(state: AppState) -> None:
    storage = state.storage
    assert storage is not None
    await _until_done(state, "bucket", storage.ensure_bucket)
