"""Everything a request handler may use, built once by the composition root (``create_app``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from backend.auth import TokenService
from backend.background import Background
from backend.db.database import Database
from backend.degradation import LastGoodCache
from backend.lifecycle import Lifecycle
from backend.observability import Metrics
from backend.settings import Settings
from backend.storage import ObjectStore
from shared.resilience import Clock, GuardedDependency, HealthChecker, PolicyRegistry


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    registry: PolicyRegistry
    checker: HealthChecker
    metrics: Metrics
    database: Database
    tokens: TokenService | None = None
    store: ObjectStore | None = None
    s3: GuardedDependency | None = None
    cache: LastGoodCache = field(default_factory=LastGoodCache)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    background: Background = field(default_factory=Background)

    def forget_object(self, key: str) -> None:
        """Remove a replaced or orphaned image from storage, later and on a best-effort basis."""
        store, s3 = self.store, self.s3
        if store is None or s3 is None:
            return

        async def delete() -> None:
            await s3.call(store.delete, key)

        self.background.spawn("delete-object", delete)

    def token_service(self) -> TokenService:
        if self.tokens is None:
            raise RuntimeError("signing keys are not loaded yet")
        return self.tokens


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.questcity
    return state
