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
from backend.observability import Metrics, classify_outcome
from backend.settings import Settings
from backend.storage import ObjectStore, ObjectStoreNotConfigured
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
    store: ObjectStore | None = None
    s3: GuardedDependency | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    background: Background = field(default_factory=Background)

    async def s3_call(
        self,
        operation: str,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """An S3 operation through the ``s3`` dependency (retried), counted by outcome."""
        return await self._s3(operation, True, fn, *args, **kwargs)

    async def s3_call_once(
        self,
        operation: str,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """As :meth:`s3_call`, without retries (for reads that have a fallback)."""
        return await self._s3(operation, False, fn, *args, **kwargs)

    async def _s3(
        self,
        operation: str,
        retried: bool,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        s3 = self.s3
        if s3 is None:
            raise ObjectStoreNotConfigured("object storage is not configured")
        try:
            if retried:
                result = await s3.call(fn, *args, **kwargs)
            else:
                result = await s3.call_once(fn, *args, **kwargs)
        except BaseException as error:
            self.metrics.record_s3_operation(operation, classify_outcome(error))
            raise
        self.metrics.record_s3_operation(operation, "success")
        return result

    def forget_object(self, key: str) -> None:
        """Remove a replaced or orphaned image from storage, later and on a best-effort basis."""
        store = self.store
        if store is None or self.s3 is None:
            return

        async def delete() -> None:
            await self.s3_call("delete_object", store.delete, key)

        self.background.spawn("delete-object", delete)

    def token_service(self) -> TokenService:
        if self.tokens is None:
            raise RuntimeError("signing keys are not loaded yet")
        return self.tokens


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.questcity
    return state
