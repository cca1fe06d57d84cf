"""Everything a request handler may use, built once by the composition root (``create_app``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from starlette.requests import Request

from backend.auth import TokenService
from backend.auth.defences import AccountDefences
from backend.background import Background
from backend.db.database import Database
from backend.degradation import LastGoodCache
from backend.lifecycle import Lifecycle
from backend.observability import Metrics
from backend.settings import Settings
from backend.storage import ObjectStorage, ObjectStore, ObjectStoreNotConfigured
from shared.resilience import Clock, GuardedDependency, HealthChecker, PolicyRegistry

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    registry: PolicyRegistry
    checker: HealthChecker
    metrics: Metrics
    database: Database
    defences: AccountDefences
    """Login and registration throttles and the password-hashing slots."""
    cache: LastGoodCache
    """Last good answers, aged on :attr:`clock` (so ``create_app`` makes it)."""
    tokens: TokenService | None = None
    storage: ObjectStorage | None = None
    """Object storage through the ``s3`` dependency; None when it is not configured."""
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    background: Background = field(default_factory=Background)

    @property
    def store(self) -> ObjectStore | None:
        """The bare object store (no retry, breaker or count); :attr:`storage` is what to call."""
        return None if self.storage is None else self.storage.store

    @property
    def s3(self) -> GuardedDependency | None:
        """The ``s3`` dependency, when object storage is configured."""
        return None if self.storage is None else self.storage.guarded

    # Thin delegates kept while the API modules move to ``state.storage`` (issue #12); new code
    # calls :attr:`storage` directly.
    async def s3_call(
        self,
        operation: str,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`ObjectStorage.call <backend.storage.ObjectStorage.call>`."""
        return await self._storage().call(operation, fn, *args, **kwargs)

    async def s3_call_once(
        self,
        operation: str,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`ObjectStorage.call_once <backend.storage.ObjectStorage.call_once>`."""
        return await self._storage().call_once(operation, fn, *args, **kwargs)

    def _storage(self) -> ObjectStorage:
        if self.storage is None:
            raise ObjectStoreNotConfigured("object storage is not configured")
        return self.storage

    def forget_object(self, key: str) -> None:
        """Remove a replaced or orphaned image from storage, later and on a best-effort basis."""
        storage = self.storage
        if storage is None:
            return

        async def delete() -> None:
            await storage.delete(key)

        self.background.spawn("delete-object", delete)

    def token_service(self) -> TokenService:
        if self.tokens is None:
            raise RuntimeError("signing keys are not loaded yet")
        return self.tokens


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.questcity
    return state
