"""``within`` and ``wait_within`` count on the injected clock: a fake clock's time decides, never
the event loop's (nothing here sleeps for real)."""

from __future__ import annotations

import asyncio

import pytest

from shared.resilience import wait_within, within
from shared.resilience.testing import FakeClock, settle


async def test_within_returns_the_result_of_work_that_ends_in_time() -> None:
    clock = FakeClock()

    async def work() -> str:
        await clock.sleep(4.9)
        return "done"

    running = asyncio.ensure_future(within(work(), 5.0, clock))
    await clock.advance(4.9)
    assert await running == "done"
    assert clock.pending_timers == 0  # the deadline's timer is gone with it


async def test_within_raises_its_works_own_error() -> None:
    async def work() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await within(work(), 5.0, FakeClock())


async def test_within_times_out_on_the_clock_and_lets_the_work_go_first() -> None:
    clock = FakeClock()
    let_go: list[float] = []

    async def stuck() -> None:
        try:
            await clock.sleep(3600)
        finally:
            let_go.append(clock.monotonic())

    running = asyncio.ensure_future(within(stuck(), 5.0, clock))
    await clock.advance(4.99)
    assert not running.done()
    await clock.advance(0.01)
    with pytest.raises(TimeoutError):
        await running
    assert let_go == [1_005.0]  # cancelled and awaited before the TimeoutError came out


async def test_a_cancelled_caller_cancels_the_work() -> None:
    clock = FakeClock()
    work_cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await clock.sleep(3600)
        except asyncio.CancelledError:
            work_cancelled.set()
            raise

    caller = asyncio.ensure_future(within(stuck(), 5.0, clock))
    await settle()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert work_cancelled.is_set()


async def test_wait_within_tells_what_still_runs_and_leaves_it_running() -> None:
    clock = FakeClock()
    quick = asyncio.ensure_future(clock.sleep(1))
    slow = asyncio.ensure_future(clock.sleep(60))

    waiting = asyncio.ensure_future(wait_within({quick, slow}, 10.0, clock))
    await clock.advance(1)
    assert quick.done() and not waiting.done()
    await clock.advance(9)
    assert await waiting == {slow}
    assert not slow.cancelled()
    slow.cancel()


async def test_wait_within_returns_as_soon_as_all_are_done() -> None:
    clock = FakeClock()
    tasks = [asyncio.ensure_future(clock.sleep(n)) for n in (1, 2)]

    waiting = asyncio.ensure_future(wait_within(tasks, 10.0, clock))
    await clock.advance(2)
    assert await waiting == set()
    assert clock.monotonic() == 1_002.0
    assert await wait_within([], 10.0, clock) == set()
