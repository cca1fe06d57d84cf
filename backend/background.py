"""Best-effort work that must not hold up a response (removing replaced images from storage)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from shared.resilience.background import BackgroundTasks

logger = logging.getLogger("backend.background")


class Background:
    def __init__(self) -> None:
        self._tasks = BackgroundTasks()

    def spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await work()
            except Exception as exc:
                logger.warning(
                    "background work %s failed: %s",
                    name,
                    type(exc).__name__,
                    extra={"event": "background_failed", "work": name, "cause": type(exc).__name__},
                )

        self._tasks.spawn(run(), name=name)

    async def close(self, grace: float = 5.0) -> None:
        await self._tasks.drain(grace)
