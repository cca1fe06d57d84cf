"""Background work is held until it ends, waited for on drain, and cancelled past the grace.

Nothing here waits on a timer: "at once" is shown by ordering (a call that returns while the work
it started is still blocked on an event, a drain that finishes without yielding to the loop), and
"within the grace" by work that ends when the test lets it.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from shared.resilience.background import BackgroundTasks

BOUND = 5.0
"""Seconds after which a broken test fails instead of hanging: a bound, never a wait."""


async def until_released(release: asyncio.Event, finished: list[str]) -> None:
    await release.wait()
    finished.append("done")


async def test_spawn_returns_while_its_work_is_still_running() -> None:
    tasks = BackgroundTasks()
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def work() -> None:
        started.set()
        await until_released(release, finished)

    tasks.spawn(work(), name="work")
    async with asyncio.timeout(BOUND):
        await started.wait()  # the work runs, and waits for the test to let it end

    assert finished == []
    release.set()
    await tasks.drain(grace=5.0)
    assert finished == ["done"]


async def test_work_is_held_until_it_ends() -> None:
    tasks = BackgroundTasks()
    release = asyncio.Event()
    finished: list[str] = []

    tasks.spawn(until_released(release, finished), name="work")
    gc.collect()  # nothing else refers to the task: it must survive anyway
    assert len(tasks) == 1
    release.set()
    await tasks.drain(grace=5.0)
    assert finished == ["done"]
    assert len(tasks) == 0


async def test_drain_waits_for_work_that_ends_within_the_grace() -> None:
    tasks = BackgroundTasks()
    release = asyncio.Event()
    finished: list[str] = []

    tasks.spawn(until_released(release, finished))
    asyncio.get_running_loop().call_soon(release.set)  # ends while drain waits
    async with asyncio.timeout(BOUND):  # a drain that sat out its grace would hit it
        await tasks.drain(grace=60.0)
    assert finished == ["done"]


async def test_work_still_running_after_the_grace_is_cancelled() -> None:
    tasks = BackgroundTasks()
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    tasks.spawn(stuck())
    async with asyncio.timeout(BOUND):
        await started.wait()
        await tasks.drain(grace=0.0)
    assert cancelled == [True]
    assert len(tasks) == 0


def test_drain_with_nothing_running_returns_without_waiting() -> None:
    # Driven by hand, outside any loop: a drain that waited at all (for the grace, or for one
    # turn of the loop) would suspend here instead of finishing on its first step.
    drain = BackgroundTasks().drain(grace=60.0)

    with pytest.raises(StopIteration):
        drain.send(None)
