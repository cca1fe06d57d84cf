"""ObjectStorage: the store's calls through the ``s3`` dependency, retried or not, each counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.app import create_app
from backend.resilience import s3_dependency
from backend.settings import Settings
from backend.state import AppState
from backend.storage import (
    InMemoryObjectStore,
    ObjectNotFound,
    ObjectStorage,
    ObjectStoreUnavailable,
)
from shared.resilience import S3_RETRY_CONFIG, HealthChecker, PolicyRegistry
from shared.resilience.testing import FakeClock, waits_disabled

Counted = list[tuple[str, str | None]]


@pytest.fixture(autouse=True)
def no_waits() -> Iterator[None]:
    with waits_disabled():
        yield


def storage_over(store: InMemoryObjectStore, counted: Counted) -> ObjectStorage:
    clock = FakeClock()

    def count(operation: str, error: BaseException | None) -> None:
        counted.append((operation, None if error is None else type(error).__name__))

    storage = ObjectStorage(store, count=count)
    storage.attach(
        s3_dependency(Settings()).bind(
            check=storage.ping,
            checker=HealthChecker(clock=clock),
            registry=PolicyRegistry(clock),
        )
    )
    return storage


async def test_put_and_get_go_through_and_are_counted() -> None:
    store, counted = InMemoryObjectStore(), Counted()
    storage = storage_over(store, counted)

    await storage.put("covers/a.png", b"png", "image/png")
    stored = await storage.get_once("covers/a.png")
    await storage.delete("covers/a.png")

    assert stored.data == b"png"
    assert store.objects == {}
    assert counted == [("put_object", None), ("get_object", None), ("delete_object", None)]


async def test_an_outage_is_retried_then_counted_once() -> None:
    store, counted = InMemoryObjectStore(), Counted()
    storage = storage_over(store, counted)
    store.unavailable = True

    with pytest.raises(ObjectStoreUnavailable):
        await storage.put("covers/a.png", b"png", "image/png")

    assert store.calls == S3_RETRY_CONFIG.max_attempts
    assert counted == [("put_object", "ObjectStoreUnavailable")]


async def test_get_once_is_not_retried() -> None:
    store, counted = InMemoryObjectStore(), Counted()
    storage = storage_over(store, counted)
    store.unavailable = True

    with pytest.raises(ObjectStoreUnavailable):
        await storage.get_once("covers/a.png")

    assert store.calls == 1
    assert counted == [("get_object", "ObjectStoreUnavailable")]


async def test_a_missing_object_is_an_answer_not_retried() -> None:
    store, counted = InMemoryObjectStore(), Counted()
    storage = storage_over(store, counted)

    with pytest.raises(ObjectNotFound):
        await storage.get("covers/none.png")

    assert store.calls == 1
    assert counted == [("get_object", "ObjectNotFound")]


def test_calls_before_attach_are_a_wiring_error() -> None:
    with pytest.raises(RuntimeError, match="attach"):
        _ = ObjectStorage(InMemoryObjectStore()).guarded


def app_state(tmp_path: Path, store: InMemoryObjectStore | None) -> AppState:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", keys_dir=tmp_path / "keys"
    )
    state: AppState = create_app(settings, clock=FakeClock(), object_store=store).state.questcity
    return state


async def test_the_app_counts_s3_operations_in_its_metrics(tmp_path: Path) -> None:
    store = InMemoryObjectStore()
    state = app_state(tmp_path, store)
    assert state.storage is not None and state.storage.store is store
    await state.storage.put("covers/a.png", b"png", "image/png")
    with pytest.raises(ObjectNotFound):
        await state.storage.get_once("covers/b.png")

    def sample(operation: str, outcome: str) -> float | None:
        return state.metrics.registry.get_sample_value(
            "questcity_s3_operations_total", {"operation": operation, "outcome": outcome}
        )

    assert (sample("put_object", "success"), sample("get_object", "ignored")) == (1.0, 1.0)


async def test_without_object_storage_there_is_nothing_to_forget(tmp_path: Path) -> None:
    state = app_state(tmp_path, None)
    assert state.storage is None

    state.forget_object("k")  # no error, and nothing spawned


async def test_a_forgotten_object_is_deleted_in_the_background(tmp_path: Path) -> None:
    store = InMemoryObjectStore()
    state = app_state(tmp_path, store)
    assert state.storage is not None
    await state.storage.put("covers/old.png", b"png", "image/png")

    state.forget_object("covers/old.png")
    await state.background.close()

    assert store.objects == {}


async def test_the_first_health_check_meets_the_bucket_it_ensures() -> None:
    # #14: the first check of a fresh start ran before the bucket existed and failed.
    store = InMemoryObjectStore(bucket_exists=False)
    storage = ObjectStorage(store)

    await storage.ping()

    assert store.bucket_exists
