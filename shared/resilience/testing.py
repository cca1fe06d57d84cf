"""Helpers for tests, shipped with the library so users' own tests can use them too.

- :class:`FakeClock` is a :class:`~shared.resilience.clock.Clock` whose time moves only when a test
  says so (``await clock.advance(5)``), or, with ``autojump=True``, jumps to the next timer whenever
  every task is waiting, so a retry loop with ten waits finishes at once. ``clock.sleeps`` lists
  what was slept (the library's own deadline ticker excluded), so waits can be asserted exactly.
- :func:`set_testing` turns every retry wait off (attempts still happen), as stamina's does.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from shared.resilience import _switches

_SETTLE_ROUNDS = 50


@dataclass(order=True)
class _FakeTimer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A manual clock. Monotonic time starts at ``start``; wall time at ``wall_start``."""

    def __init__(
        self, *, start: float = 1_000.0, wall_start: float = 1_700_000_000.0, autojump: bool = False
    ) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()
        self.autojump = autojump
        self.sleeps: list[float] = []
        """Every duration passed to :meth:`sleep`, in order."""

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def jump_wall(self, seconds: float) -> None:
        """Move the wall clock only (an NTP step, a DST bug); monotonic time is untouched."""
        self._wall_offset += seconds

    def call_later(self, delay: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(self._now + max(delay, 0.0), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        if not _in_library_ticker():
            self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            if self.autojump:
                # As in trio's autojump clock: once every task is idle, time jumps to the
                # next timer, so timers fire in order and concurrent sleepers agree on time.
                while not future.done():
                    await settle()
                    if not future.done():
                        self._fire_next()
            await future
        finally:
            timer.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order and letting woken tasks run."""
        target = self._now + seconds
        await settle()
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.when)
            timer.callback()
            await settle()
        self._now = max(self._now, target)
        await settle()

    def _fire_next(self) -> None:
        while self._timers:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._now = max(self._now, timer.when)
                timer.callback()
                return

    @property
    def pending_timers(self) -> int:
        return sum(1 for timer in self._timers if not timer.cancelled)


def _in_library_ticker() -> bool:
    task = asyncio.current_task()
    return task is not None and task.get_name() == "deadline-watch"


async def settle() -> None:
    """Let every task that is ready run until the event loop has nothing left to do right now."""
    for _ in range(_SETTLE_ROUNDS):
        await asyncio.sleep(0)


def set_testing(enabled: bool) -> None:
    """Turn retry waits off (``True``) or back on, for the whole process."""
    _switches.waits_disabled = enabled


@contextmanager
def waits_disabled() -> Iterator[None]:
    """Within this block, retries happen without waiting."""
    previous = _switches.waits_disabled
    _switches.waits_disabled = True
    try:
        yield
    finally:
        _switches.waits_disabled = previous
