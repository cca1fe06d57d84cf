"""Best-effort work started in the background and still waited for at shutdown.

asyncio keeps only a weak reference to a task, so a task nobody holds can vanish mid-flight: each
one is held here until it ends. :meth:`BackgroundTasks.drain` gives what is left a grace period on
shutdown and then cancels it, so a stuck piece of work cannot hold a shutdown for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from shared.resilience.request_deadline import detached_context


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str | None = None) -> None:
        """Run ``work`` in the background; it should handle (log) its own errors.

        The work is not part of the request that may have started it: it runs without that
        request's deadline, under its policies' own deadlines.
        """
        task = asyncio.get_running_loop().create_task(work, name=name, context=detached_context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace: float = 5.0) -> None:
        """Wait up to ``grace`` seconds for the running work, then cancel what is left."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
