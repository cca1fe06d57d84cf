"""Deadlines for calls, without a timer or a task lookup per call.

``asyncio.timeout()`` arms and disarms a loop timer for every call (~4 µs here), and even finding
the current task costs ~0.25 µs on these machines; on the hot path of every query that is the whole
budget. So a :class:`DeadlineWatch` keeps, for each call in flight, only its coroutine and
deadline in a dict. One coarse ticker task, alive only while calls are in flight, looks for overdue
coroutines and only then finds the task that is awaiting each one (by walking the tasks'
``cr_await`` chains) and cancels it. The ticker wakes every ``resolution``, or at the nearest
deadline when that comes sooner (at most ten times a period), so a call ends within a tenth of a
period of its deadline, as soon as the loop gets to it.

The cancellation is told apart from one that came from outside the way ``asyncio.timeout`` does it:
the watch remembers which calls it cancelled and withdraws its cancel request with
``Task.uncancel()``; when another cancel request remains, the caller's cancellation wins.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from types import CoroutineType
from typing import Any, TypeVar

from shared.resilience.clock import Clock

_DISARMED = -math.inf
_WAKES_PER_PERIOD = 10
"""At most this many wake-ups per period when deadlines come close together."""

T = TypeVar("T")


class DeadlineWatch:
    """Cancels the task awaiting a watched call once the call's deadline has passed."""

    __slots__ = ("_clock", "_generation", "_ticker", "entries", "fired", "resolution", "tick_due")

    def __init__(self, clock: Clock, resolution: float) -> None:
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution!r}")
        self._clock = clock
        self.resolution = resolution
        # Keyed by the awaitable itself (a coroutine hashes by identity): no key to make.
        self.entries: dict[Awaitable[Any], float] = {}
        self.fired: dict[Awaitable[Any], asyncio.Task[Any]] = {}
        self.tick_due = _DISARMED
        self._generation = 0
        self._ticker: asyncio.Task[None] | None = None

    def watch(self, call: Awaitable[Any], deadline: float, now: float) -> None:
        """Watch ``call`` (about to be awaited by the current task) until :meth:`release`."""
        self.entries[call] = deadline
        # A ticker that has not fired by its due time belongs to a stopped or stalled loop:
        # start a fresh one (the old one sees a newer generation and stands down).
        if now > self.tick_due:
            self.arm(now)

    def release(self, call: Awaitable[Any]) -> bool:
        """Stop watching; True when this watch cancelled the call (its request is withdrawn)."""
        del self.entries[call]
        return bool(self.fired) and self.take_fired(call)

    def take_fired(self, call: Awaitable[Any]) -> bool:
        """True when this watch cancelled ``call``; its cancel request is then withdrawn."""
        task = self.fired.pop(call, None)
        if task is None:
            return False
        task.uncancel()
        return True

    @property
    def in_flight(self) -> int:
        return len(self.entries)

    def arm(self, now: float) -> None:
        """Start the ticker (callers on a hot path inline :meth:`watch` and call this)."""
        self._generation += 1
        self.tick_due = now + self.resolution
        # A task rather than a loop timer: when its loop shuts down (asyncio.run, a Runner, a
        # test's loop) the task is cancelled and disarms the watch, so the next loop arms anew.
        self._ticker = asyncio.get_running_loop().create_task(
            self._tick(self._generation), name="deadline-watch"
        )

    async def _tick(self, generation: int) -> None:
        try:
            delay = self.resolution
            while True:
                await self._clock.sleep(delay)
                if generation != self._generation:
                    return  # a newer ticker took over
                now = self._clock.monotonic()
                overdue = []
                nearest = math.inf
                fired = self.fired
                for call, deadline in self.entries.items():
                    if deadline > now:
                        if deadline < nearest:
                            nearest = deadline
                    elif call not in fired:
                        overdue.append(call)
                if overdue:
                    self._cancel(overdue)
                if not self.entries:
                    self.tick_due = _DISARMED
                    return
                # Next wake-up: the nearest deadline if it comes within a period (but no more
                # than _WAKES_PER_PERIOD times a period). A dependency that stops answering then
                # has its calls time out one by one near their own deadlines, and the one that
                # opens the breaker does so before the next call's deadline passes (the breaker
                # cuts that one short); with whole periods, calls whose deadlines fell within the
                # same period timed out together.
                delay = min(
                    self.resolution,
                    max(nearest - now, self.resolution / _WAKES_PER_PERIOD),
                )
                # A staleness bound for watch(), not the wake-up time: a call arriving in the
                # loop turn the ticker is due in must not take the ticker for stalled.
                self.tick_due = now + self.resolution
        except asyncio.CancelledError:
            if generation == self._generation:
                self.tick_due = _DISARMED
            raise

    def cancel_all(self) -> None:
        """Cancel every watched call now, as if its deadline had passed."""
        pending = [call for call in self.entries if call not in self.fired]
        if pending:
            self._cancel(pending)

    def _cancel(self, overdue: list[Awaitable[Any]]) -> None:
        wanted = set(map(id, overdue))
        by_id = {id(call): call for call in overdue}
        for task in asyncio.all_tasks():
            if task.done() or task is self._ticker:
                continue
            link: Any = task.get_coro()
            while link is not None:
                if id(link) in wanted:
                    call = by_id[id(link)]
                    if call is link:
                        self.fired[call] = task
                        task.cancel()
                    break
                link = getattr(link, "cr_await", None) or getattr(link, "gi_yieldfrom", None)


def resolution_for(bound: float) -> float:
    """Ticker period for calls bounded by ``bound`` seconds: 1 % of it, within [1 ms, 50 ms].

    How late a watch may notice calls it did not yet know of when it last woke (a call with a
    shorter bound than those in flight); a tick is a dict scan, so it costs little.
    """
    return min(max(bound / 100.0, 0.001), 0.05)


def no_outside_cancellation() -> bool:
    """After a watch withdrew its own cancel request: True when nobody else asked to cancel."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


async def _awaiting(awaitable: Awaitable[T]) -> T:
    return await awaitable


def as_coroutine(awaitable: Awaitable[T]) -> Awaitable[T]:
    """The awaitable itself when it is a coroutine (it can then be found in a task's await
    chain), else a coroutine awaiting it."""
    if type(awaitable) is CoroutineType:
        return awaitable
    return _awaiting(awaitable)
