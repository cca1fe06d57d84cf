"""Time as a dependency.

Every policy in this package reads time and waits through a :class:`Clock`, so that tests drive
time by hand (:class:`shared.resilience.testing.FakeClock`) and never sleep for a timer.
Only the monotonic clock is used for decisions: a wall-clock jump must change nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time and waiting, in seconds."""

    def monotonic(self) -> float: ...

    def wall(self) -> float:
        """Seconds since the epoch: for display and reports only, never for decisions."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic`` and the running event loop's timers."""

    # Builtins stored as class attributes are not bound as methods, so ``clock.monotonic()``
    # costs one C call on the hot path.
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
