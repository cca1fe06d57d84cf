"""Waiting for work for at most so many seconds of a :class:`~shared.resilience.clock.Clock`.

``asyncio.timeout`` and ``asyncio.wait(timeout=…)`` count on the event loop's own clock, so a test
on a :class:`~shared.resilience.testing.FakeClock` could not drive them; these two wait on the
injected clock instead:

- :func:`within` — one piece of work's result, or ``TimeoutError`` once the time is up; the work is
  then cancelled *and awaited*, so whatever it held (a connection, a transaction) is let go before
  the caller goes on;
- :func:`wait_within` — wait for several running tasks and tell which are still running when the
  time is up (they are left running: the caller decides what to do with them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from shared.resilience.clock import Clock

T = TypeVar("T")


async def within(work: Awaitable[T], seconds: float, clock: Clock) -> T:
    """``work``'s result (or its exception), or ``TimeoutError`` once ``seconds`` of ``clock``
    have passed; ``work`` is then cancelled and awaited before this returns."""
    task = asyncio.ensure_future(work)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, timer, return_exceptions=True)
    if task.cancelled():
        raise TimeoutError
    return task.result()


async def wait_within(
    tasks: Iterable[asyncio.Future[Any]], seconds: float, clock: Clock
) -> set[asyncio.Future[Any]]:
    """Wait for ``tasks`` for at most ``seconds`` of ``clock``; the ones still running then
    (not cancelled: that is the caller's call)."""
    pending: set[asyncio.Future[Any]] = {task for task in tasks if not task.done()}
    if not pending:
        return pending
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        while pending and not timer.done():
            _done, pending = await asyncio.wait(
                {*pending, timer}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(timer)
    finally:
        timer.cancel()
        await asyncio.gather(timer, return_exceptions=True)
    return pending
