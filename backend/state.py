"""Everything a request handler may use, built once by the composition root (``create_app``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from backend.auth import TokenService
from backend.auth.defences import AccountDefences
from backend.background import Background
from backend.db.database import Database
from backend.degradation import LastGoodCache
from backend.lifecycle import Lifecycle
from backend.observability import Metrics
from backend.settings import Settings
from backend.storage import ObjectStorage
from shared.resilience import Clock, HealthChecker, PolicyRegistry


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
