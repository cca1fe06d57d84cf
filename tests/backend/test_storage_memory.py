"""The in-memory fake honours the ObjectStore contract, and fails the way a real store does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from backend.storage import (
    InMemoryObjectStore,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
)
from shared.resilience import Jitter, RetryConfig, RetryPolicy
from shared.resilience.testing import FakeClock
from tests.backend.object_store_contract import ObjectStoreContract


@pytest.fixture
async def store() -> AsyncIterator[InMemoryObjectStore]:
    fake = InMemoryObjectStore()
    yield fake
    await fake.close()


class TestInMemoryContract(ObjectStoreContract):
    pass


def test_the_fake_is_an_object_store() -> None:
    store: ObjectStore = InMemoryObjectStore()  # mypy checks the protocol here
    assert store is not None


async def test_unavailable_switch_fails_every_call(store: InMemoryObjectStore) -> None:
    await store.put("k", b"v", "text/plain")
    store.unavailable = True
    store.retry_after = 4.0

    calls: list[Callable[[], Awaitable[object]]] = [
        store.ping,
        store.ensure_bucket,
        lambda: store.get("k"),
        lambda: store.put("k", b"w", "text/plain"),
        lambda: store.delete("k"),
    ]
    for call in calls:
        with pytest.raises(ObjectStoreUnavailable) as caught:
            await call()
        assert caught.value.retry_after == 4.0
        assert isinstance(caught.value, ConnectionError)

    store.unavailable = False
    assert (await store.get("k")).data == b"v"  # nothing was changed while down


async def test_missing_bucket_until_ensure_bucket() -> None:
    store = InMemoryObjectStore(bucket_exists=False)

    with pytest.raises(ObjectStoreError) as caught:
        await store.ping()
    assert not isinstance(caught.value, ObjectStoreUnavailable | ObjectNotFound)
    with pytest.raises(ObjectStoreError):
        await store.put("k", b"v", "text/plain")

    await store.ensure_bucket()
    await store.ping()
    await store.put("k", b"v", "text/plain")


async def test_closed_store_refuses_calls(store: InMemoryObjectStore) -> None:
    await store.close()
    await store.close()

    with pytest.raises(RuntimeError, match="closed"):
        await store.ping()


async def test_calls_are_counted(store: InMemoryObjectStore) -> None:
    await store.put("k", b"v", "text/plain")
    store.unavailable = True
    with pytest.raises(ObjectStoreUnavailable):
        await store.get("k")

    assert store.calls == 2


# The exception tree is made for the policy library's defaults: retry_on is
# (ConnectionError, TimeoutError), so "unavailable" is retried and "not found" is not.


def _policy(clock: FakeClock) -> RetryPolicy:
    config = RetryConfig(max_attempts=3, base_delay=0.5, max_delay=0.5, jitter=Jitter.NONE)
    return RetryPolicy(config, name="s3-test", clock=clock)


async def test_default_retry_policy_retries_unavailable_and_honours_retry_after(
    store: InMemoryObjectStore,
) -> None:
    clock = FakeClock(autojump=True)
    store.unavailable = True
    store.retry_after = 2.0

    with pytest.raises(ObjectStoreUnavailable):
        await _policy(clock).call(store.get, "k")

    assert store.calls == 3
    assert clock.sleeps == [2.0, 2.0]  # the server's wait, not the 0.5 s backoff


async def test_default_retry_policy_does_not_retry_not_found(store: InMemoryObjectStore) -> None:
    clock = FakeClock(autojump=True)

    with pytest.raises(ObjectNotFound):
        await _policy(clock).call(store.get, "missing")

    assert store.calls == 1
    assert clock.sleeps == []
