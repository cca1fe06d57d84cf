"""Object storage as the application sees it: the store's calls through the ``s3`` dependency's
retry and breaker, each counted by outcome (the twin of :class:`backend.db.database.Database`).

- :meth:`ObjectStorage.put`, :meth:`~ObjectStorage.get` and :meth:`~ObjectStorage.delete` go
  through ``retry(breaker(timeout(...)))``: a put writes a new, unique key and a delete of a
  missing object is no error, so repeating any of them is harmless.
- :meth:`ObjectStorage.get_once` goes through ``breaker(timeout(...))`` only, for reads that have
  a fallback (the placeholder image): waiting out retries would help nobody.
- :meth:`ObjectStorage.call` and :meth:`~ObjectStorage.call_once` are those two forms for any
  store method, named ``operation`` in the count.

Like the database, it is made from the store, then the composition root wires the ``s3``
dependency (whose health check is :meth:`ping`) with :meth:`attach`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from backend.resilience import DependencyGateway
from backend.storage.object_store import ObjectStore, StoredObject

P = ParamSpec("P")
T = TypeVar("T")

Count = Callable[[str, BaseException | None], None]
"""Told each call's operation name and its error (None: it succeeded)."""


def _count_nothing(operation: str, error: BaseException | None) -> None:
    pass


class ObjectStorage(DependencyGateway):
    def __init__(self, store: ObjectStore, *, count: Count = _count_nothing) -> None:
        self.store = store
        self._count = count
        self._bucket_ready = False

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.call("put_object", self.store.put, key, data, content_type)

    async def get(self, key: str) -> StoredObject:
        return await self.call("get_object", self.store.get, key)

    async def get_once(self, key: str) -> StoredObject:
        """As :meth:`get`, without retries (for reads that have a fallback)."""
        return await self.call_once("get_object", self.store.get, key)

    async def delete(self, key: str) -> None:
        await self.call("delete_object", self.store.delete, key)

    async def call(
        self, operation: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(*args, **kwargs)`` through retry, breaker and timeout, counted as ``operation``."""
        try:
            result = await self.guarded.call(fn, *args, **kwargs)
        except BaseException as error:
            self._count(operation, error)
            raise
        self._count(operation, None)
        return result

    async def call_once(
        self, operation: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """As :meth:`call`, through breaker and timeout only."""
        try:
            result = await self.guarded.call_once(fn, *args, **kwargs)
        except BaseException as error:
            self._count(operation, error)
            raise
        self._count(operation, None)
        return result

    async def ping(self) -> None:
        """The health check: the bucket is reachable (the checker applies its own timeout).

        Until the bucket has been ensured once, the check ensures it first: the checker and the
        start-up's ensure-bucket task start together, and a first check that met no bucket was
        an S3 failure recorded on every start (a healthy row read "ObjectStoreError" and 96 %).
        Ensuring is idempotent, so the two racing costs one extra HEAD, never a failure; an S3
        that is really down fails the check as before."""
        if not self._bucket_ready:
            await self.ensure_bucket()
        await self.store.ping()

    async def start(self) -> None:
        """Open the store's client, if it has one to open. It contacts nothing, so an S3 outage
        at start-up does not stop the backend."""
        starter = getattr(self.store, "start", None)
        if starter is not None:
            await starter()

    async def ensure_bucket(self) -> None:
        await self.store.ensure_bucket()
        self._bucket_ready = True

    async def close(self) -> None:
        await self.store.close()
