"""Waiting for something real to catch up: a server to start, a background check to land, a
scheduler on the real clock to run a job. Polls a condition; never sleeps a fixed time for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]],
    what: str = "",
    *,
    within: float = 15.0,
    every: float = 0.05,
) -> None:
    """Poll ``check()`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        await asyncio.sleep(every)
