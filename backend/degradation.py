"""What the backend serves when a dependency is down.

- :class:`LastGoodCache` keeps the last good answer of cacheable reads, so that while the database
  is unreachable those reads answer 200 with the copy, marked ``X-QuestCity-Degraded: database``.
  How old a copy is comes from the injected clock (the app's own), like every other age here.
- :func:`unavailable` turns a dependency failure into the 503 a client sees: a JSON body naming the
  service, and ``Retry-After`` (the breaker's own estimate when it is open).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from backend.db.errors import DatabaseUnavailable, PoolExhausted
from backend.errors import ApiError
from backend.storage import ObjectStoreError, ObjectStoreNotConfigured, ObjectStoreUnavailable
from shared.resilience import SYSTEM_CLOCK, CircuitBreakerOpenError, Clock

DEGRADED_HEADER = "X-QuestCity-Degraded"

# Failures that mean "the dependency cannot answer now", as opposed to a bad request.
# ObjectStoreError covers storage refusing us for good (credentials rotated, bucket deleted):
# to a client that is storage being unavailable, not a server bug.
DEPENDENCY_FAILURES: tuple[type[BaseException], ...] = (
    CircuitBreakerOpenError,
    DatabaseUnavailable,
    PoolExhausted,
    ObjectStoreUnavailable,
    ObjectStoreError,
    TimeoutError,
    ConnectionError,
)

_SERVICE_WORDS = {"database": "The database", "s3": "File storage"}


@dataclass(frozen=True, slots=True)
class Cached:
    payload: object
    stored_at: float
    """The cache's monotonic clock when the payload was stored (:meth:`LastGoodCache.age`)."""


class LastGoodCache:
    """A bounded LRU of the last good payload per read."""

    def __init__(self, max_entries: int = 4096, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._entries: OrderedDict[Hashable, Cached] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def put(self, key: Hashable, payload: object) -> None:
        self._entries[key] = Cached(payload, self._clock.monotonic())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def get(self, key: Hashable) -> Cached | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def age(self, entry: Cached) -> float:
        """Seconds since ``entry`` was stored, by the cache's clock."""
        return self._clock.monotonic() - entry.stored_at

    def drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def unavailable(service: str, error: BaseException) -> ApiError:
    """The 503 for ``service`` failing with ``error`` (never the error's own text)."""
    words = _SERVICE_WORDS.get(service, service)
    if isinstance(error, ObjectStoreNotConfigured):
        return ApiError(
            503,
            "not_configured",
            f"{words} is not configured on this server.",
            headers={"Retry-After": "3600"},
            extra={"service": service},
        )
    if isinstance(error, PoolExhausted):
        return ApiError(
            503,
            "overloaded",
            "The server is busy; try again in a moment.",
            headers={"Retry-After": "1"},
            extra={"service": service},
        )
    retry_after = 5.0
    if isinstance(error, CircuitBreakerOpenError):
        retry_after = max(error.retry_after, 1.0)
    else:
        hinted = getattr(error, "retry_after", None)
        if isinstance(hinted, int | float) and hinted > 0:
            retry_after = float(hinted)
    return ApiError(
        503,
        "service_unavailable",
        f"{words} is unavailable right now; try again shortly.",
        headers={"Retry-After": str(math.ceil(retry_after))},
        extra={"service": service},
    )
