"""A real clock whose time a test can jump forward, for integration tests against real servers.

Real I/O needs real time, so a fake clock cannot drive a backend talking to PostgreSQL; but no test
should wait 30 s for a breaker's recovery timeout either. :class:`SkewClock` is the system clock
plus an offset: ``jump(31)`` makes every deadline and recovery timeout 31 s nearer at once, while
sleeps stay real (and short: integration tests turn retry waits off).
"""

from __future__ import annotations

import asyncio
import time


class SkewClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def jump(self, seconds: float) -> None:
        self.offset += seconds
