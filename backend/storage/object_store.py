"""The object store port: what the backend needs from S3, and the errors it can expect.

The core depends on :class:`ObjectStore` only; :class:`~backend.storage.s3.S3ObjectStore` is the
adapter for S3-compatible servers (MinIO, SeaweedFS, AWS) and :class:`InMemoryObjectStore` the
fake for unit tests. Adapters translate their driver's exceptions into this tree at the boundary,
so nothing above them ever sees botocore or aiohttp::

    Exception
    └── ObjectStoreError                  anything the object store refused or failed to do
        ├── ObjectStoreUnavailable        (also a ConnectionError) the service is not answering
        │                                 properly: refused/reset connections, timeouts, 5xx,
        │                                 throttling; ``retry_after`` when the server said so
        ├── ObjectNotFound                (also a LookupError) no object under that key
        └── ObjectStoreNotConfigured      no object store is configured (QUESTCITY_S3_ENDPOINT_URL)

The policy library's default ``retry_on`` is ``(ConnectionError, TimeoutError)``, so exactly
:class:`ObjectStoreUnavailable` is retried; a missing object, a refused signature or a missing
bucket are not. Messages carry the error's class or S3 code only: never the endpoint, the
credentials, the bucket or the object key (they reach logs that may be shown).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


class ObjectStoreError(Exception):
    """The object store refused or failed to do what was asked."""


class ObjectStoreUnavailable(ObjectStoreError, ConnectionError):
    """The object store is not answering properly; trying again later may work.

    ``retry_after`` is the number of seconds the server asked us to wait, when it said so (the
    retry policy waits at least that long before the next attempt).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ObjectNotFound(ObjectStoreError, LookupError):
    """There is no object under ``key``. A business outcome, not a failure of the store."""

    def __init__(self, key: str) -> None:
        super().__init__("object not found")
        self.key = key


class ObjectStoreNotConfigured(ObjectStoreError):
    """No object store is configured, so file features are off."""

    def __init__(self, message: str = "object storage is not configured") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class StoredObject:
    data: bytes
    content_type: str
    etag: str
    """The server's entity tag, without the surrounding quotes (an HTTP ``ETag`` adds them)."""


class ObjectStore(Protocol):
    """Objects by key in one bucket. Every method may raise :class:`ObjectStoreError`."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``, replacing what was there."""
        ...

    async def get(self, key: str) -> StoredObject:
        """The object under ``key``; :class:`ObjectNotFound` when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object under ``key``; removing a missing object is not an error."""
        ...

    async def ping(self) -> None:
        """Return when the bucket is reachable; raise :class:`ObjectStoreError` otherwise."""
        ...

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent; the store is unusable afterwards."""
        ...


class InMemoryObjectStore:
    """An :class:`ObjectStore` in a dict, for unit tests.

    Set ``unavailable = True`` (and optionally ``retry_after``) to make every call fail with
    :class:`ObjectStoreUnavailable`, as a store that is down would. A store created with
    ``bucket_exists=False`` behaves like a server without the bucket until :meth:`ensure_bucket`.
    ``calls`` counts the calls that reached the store, failed ones included.
    """

    def __init__(self, *, bucket_exists: bool = True) -> None:
        self.objects: dict[str, StoredObject] = {}
        self.bucket_exists = bucket_exists
        self.unavailable = False
        self.retry_after: float | None = None
        self.closed = False
        self.calls = 0

    def _enter(self, *, needs_bucket: bool = True) -> None:
        if self.closed:
            raise RuntimeError("the object store is closed")
        self.calls += 1
        if self.unavailable:
            raise ObjectStoreUnavailable(
                "object store unavailable: simulated outage", retry_after=self.retry_after
            )
        if needs_bucket and not self.bucket_exists:
            raise ObjectStoreError("object store error: the bucket does not exist")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self._enter()
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.objects[key] = StoredObject(bytes(data), content_type, etag)

    async def get(self, key: str) -> StoredObject:
        self._enter()
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None

    async def delete(self, key: str) -> None:
        self._enter()
        self.objects.pop(key, None)

    async def ping(self) -> None:
        self._enter()

    async def ensure_bucket(self) -> None:
        self._enter(needs_bucket=False)
        self.bucket_exists = True

    async def close(self) -> None:
        self.closed = True
