"""Background work is held until it ends, waited for on drain, and cancelled past the grace."""

from __future__ import annotations

import asyncio
import gc

from shared.resilience.background import BackgroundTasks


async def until_released(release: asyncio.Event, finished: list[str]) -> None:
    await release.wait()
    finished.append("done")


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
    await tasks.drain(grace=60.0)
    assert finished == ["done"]


async def test_work_still_running_after_the_grace_is_cancelled() -> None:
    tasks = BackgroundTasks()
    cancelled: list[bool] = []

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    tasks.spawn(stuck())
    await asyncio.sleep(0)  # let it start
    await tasks.drain(grace=0.0)
    assert cancelled == [True]
    assert len(tasks) == 0


async def test_drain_with_nothing_running_returns_at_once() -> None:
    await BackgroundTasks().drain(grace=60.0)
