"""Component states kept with each check, group commit, and the catalogue's partial updates; on
SQLite and PostgreSQL alike (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select
from sqlalchemy.exc import OperationalError

from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    Component,
    ComponentState,
    Status,
    StoreError,
    StoreUnavailable,
)
from monitor.store.migrations.states import backfill_states
from monitor.store.schema import checks, component_states, revisions
from monitor.store.writer import HistoryWriter
from monitor.store.writing.checks import Pending
from shared.resilience.testing import FakeClock
from tests.monitor.store.support import DAY0, Store, check, sample

POLL = 10.0
"""Seconds before a test that waits on the writer gives up (it should settle at once)."""


class _Queue(list[Pending]):
    """The writer's queue of checks, telling a test the moment a check is handed over to it:
    the waiting test is woken before anything the hand-over started (the flusher) runs."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def append(self, pending: Pending) -> None:
        super().append(pending)
        self.total += 1
        for count, waiter in self._waiters:
            if self.total >= count and not waiter.done():
                waiter.set_result(None)

    async def until(self, count: int) -> None:
        """Wait until ``count`` checks in all have been handed to the writer."""
        if self.total >= count:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        async with asyncio.timeout(POLL):
            await waiter


class _WindowClock(FakeClock):
    """A fake clock that says when the writer's batch window has begun (its flusher sleeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.window_open = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.window_open.set()
        await super().sleep(seconds)


def _watch(writer: HistoryWriter) -> _Queue:
    queue = _Queue()
    writer._pending = queue
    return queue


# -- component states ---------------------------------------------------------------------------


async def test_since_holds_while_the_status_holds_and_moves_when_it_changes(store: Store) -> None:
    for at, status in ((DAY0, Status.HEALTHY), (DAY0 + 10, Status.HEALTHY)):
        await store.writer.record_check(check(at, status))
    assert (await store.reader.states())[("api", TARGET_COMPONENT)] == ComponentState(
        Status.HEALTHY, DAY0, DAY0 + 10
    )

    await store.writer.record_check(check(DAY0 + 20, Status.DEGRADED))
    await store.writer.record_check(check(DAY0 + 30, Status.DEGRADED))

    assert (await store.reader.states())[("api", TARGET_COMPONENT)] == ComponentState(
        Status.DEGRADED, DAY0 + 20, DAY0 + 30
    )


async def test_services_have_states_of_their_own(store: Store) -> None:
    await store.writer.record_check(
        check(DAY0, services=(sample("database"), sample("s3", Status.UNHEALTHY)))
    )
    await store.writer.record_check(
        check(DAY0 + 10, services=(sample("database"), sample("s3", Status.HEALTHY)))
    )

    states = await store.reader.states()

    assert states == {
        ("api", TARGET_COMPONENT): ComponentState(Status.HEALTHY, DAY0, DAY0 + 10),
        ("api", "database"): ComponentState(Status.HEALTHY, DAY0, DAY0 + 10),
        ("api", "s3"): ComponentState(Status.HEALTHY, DAY0 + 10, DAY0 + 10),
    }


async def test_an_unreachable_target_leaves_its_services_as_last_seen(store: Store) -> None:
    """Readers tell from ``checked_at`` that the services were not seen by the latest check."""
    await store.writer.record_check(check(DAY0, services=(sample("database"),)))
    await store.writer.record_check(
        check(DAY0 + 10, Status.UNREACHABLE, latency_ms=None, http_status=None, error="timeout")
    )

    states = await store.reader.states()

    assert states[("api", TARGET_COMPONENT)] == ComponentState(
        Status.UNREACHABLE, DAY0 + 10, DAY0 + 10
    )
    assert states[("api", "database")] == ComponentState(Status.HEALTHY, DAY0, DAY0)


async def test_a_check_older_than_the_state_does_not_move_it(store: Store) -> None:
    await store.writer.record_check(check(DAY0 + 100, Status.HEALTHY))
    await store.writer.record_check(check(DAY0 + 50, Status.UNHEALTHY))  # written late

    assert (await store.reader.states())[("api", TARGET_COMPONENT)] == ComponentState(
        Status.HEALTHY, DAY0 + 100, DAY0 + 100
    )


async def test_a_status_change_within_one_batch_sets_since_to_the_change(store: Store) -> None:
    await store.writer.record_check(check(DAY0, Status.UNHEALTHY))
    await asyncio.gather(
        *(
            store.writer.record_check(check(at, status))
            for at, status in (
                (DAY0 + 30, Status.HEALTHY),
                (DAY0 + 10, Status.UNHEALTHY),
                (DAY0 + 20, Status.HEALTHY),
            )
        )
    )

    assert (await store.reader.states())[("api", TARGET_COMPONENT)] == ComponentState(
        Status.HEALTHY, DAY0 + 20, DAY0 + 30
    )


async def test_targets_are_the_checked_targets(store: Store) -> None:
    await store.writer.record_check(check(DAY0, target="web", services=(sample("database"),)))
    await store.writer.record_check(check(DAY0, target="api"))

    assert await store.reader.targets() == ["api", "web"]


async def test_the_migrations_fill_states_of_a_store_from_before_they_existed(
    store: Store,
) -> None:
    await store.writer.record_check(
        check(DAY0, services=(sample("database"), sample("s3", Status.UNHEALTHY)))
    )
    await store.writer.record_check(
        check(DAY0 + 10, Status.DEGRADED, services=(sample("database"), sample("s3")))
    )
    await store.writer.record_check(check(DAY0 + 20, Status.DEGRADED, target="web"))
    before = await store.reader.states()
    async with store.engine.begin() as connection:  # as an older version left the store
        await connection.execute(delete(component_states))

    async with store.engine.begin() as connection:
        filled = await connection.run_sync(backfill_states)

    assert filled == 4
    assert await store.reader.states() == before
    async with store.engine.begin() as connection:
        assert await connection.run_sync(backfill_states) == 0  # once only


# -- group commit -------------------------------------------------------------------------------


@contextmanager
def _commits(store: Store) -> Iterator[list[int]]:
    seen: list[int] = []

    def _commit(connection: Any) -> None:
        seen.append(1)

    event.listen(store.engine.sync_engine, "commit", _commit)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "commit", _commit)


async def _stored_checks(store: Store) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(checks)) or 0)


async def test_checks_arriving_together_are_committed_together(store: Store) -> None:
    records = [
        check(DAY0 + n, target=f"t{n % 7}", services=(sample("database"),)) for n in range(60)
    ]
    with _commits(store) as commits:
        await asyncio.gather(*(store.writer.record_check(r) for r in records))

    assert await _stored_checks(store) == 60
    assert len(commits) == 1


async def test_record_check_returns_only_once_committed(store: Store) -> None:
    with _commits(store) as commits:
        await store.writer.record_check(check(DAY0))
        assert len(commits) == 1
    assert await _stored_checks(store) == 1


async def test_a_bad_check_does_not_sink_the_others_in_its_batch(store: Store) -> None:
    bad = CheckRecord(None, DAY0, Status.HEALTHY, 1.0, 200, None)  # type: ignore[arg-type]
    good = [check(DAY0 + n, target=f"t{n}") for n in range(5)]

    results = await asyncio.gather(
        *(store.writer.record_check(r) for r in [*good[:2], bad, *good[2:]]),
        return_exceptions=True,
    )

    assert results[:2] == good[:2]
    # Its stand-in has no target either: the database refused it, as a store error.
    assert isinstance(results[2], StoreError) and not isinstance(results[2], StoreUnavailable)
    assert isinstance(results[2].__cause__, Exception)
    assert results[3:] == good[2:]
    assert await _stored_checks(store) == 5


async def test_a_value_the_store_cannot_hold_fails_only_its_own_check(store: Store) -> None:
    """A target's answer with a number no INTEGER column holds (10**30: SQLite raises
    OverflowError, asyncpg refuses it for an int4): that check is stored as a failed check of its
    target, and every other check of the batch as it was."""
    bad = check(
        DAY0 + 2,
        target="hostile",
        services=(sample("database", consecutive_failures=10**30),),
    )
    good = [check(DAY0 + n, target=f"t{n}", services=(sample("database"),)) for n in range(5)]

    results = await asyncio.gather(
        *(store.writer.record_check(r) for r in [*good[:2], bad, *good[2:]])
    )

    assert [*results[:2], *results[3:]] == good
    refused = results[2]
    assert (refused.target, refused.at, refused.status, refused.error, refused.services) == (
        "hostile",
        DAY0 + 2,
        Status.UNREACHABLE,
        "answer out of range",
        (),
    )
    assert await _stored_checks(store) == 6
    latest = await store.reader.latest("hostile")
    assert latest is not None
    assert latest.record.status is Status.UNREACHABLE
    assert latest.record.error == "answer out of range"
    for n in range(5):
        stored = await store.reader.latest(f"t{n}")
        assert stored is not None
        assert stored.record.status is Status.HEALTHY
        assert [s.service for s in stored.record.services] == ["database"]


async def test_a_caller_that_gives_up_still_has_its_check_written(store: Store) -> None:
    queue = _watch(store.writer)
    task = asyncio.create_task(store.writer.record_check(check(DAY0)))
    await queue.until(1)  # the check is handed over
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await store.writer.flush()

    assert await _stored_checks(store) == 1


async def test_a_failing_database_fails_the_batch_without_retrying_check_by_check(
    store: Store,
) -> None:
    """Gone, locked, out of connections: one by one would only stall the writer longer."""
    attempts: list[int] = []

    async def failing(batch: Any) -> None:
        attempts.append(len(batch))
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    store.writer._write_checks = failing  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(store.writer.record_check(check(DAY0 + n, target=f"t{n}")) for n in range(4)),
        return_exceptions=True,
    )

    assert attempts == [4]
    assert all(isinstance(r, StoreUnavailable) for r in results)


async def test_a_writer_cancelled_mid_batch_leaves_no_caller_waiting(store: Store) -> None:
    started = asyncio.Event()

    async def stuck(batch: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    store.writer._write_checks = stuck  # type: ignore[method-assign]
    queue = _watch(store.writer)
    callers = [asyncio.create_task(store.writer.record_check(check(DAY0 + n))) for n in range(3)]
    await started.wait()
    late = asyncio.create_task(store.writer.record_check(check(DAY0 + 9)))
    await queue.until(4)  # handed over while the first three are being written
    assert len(queue) == 1
    flusher = store.writer._flusher
    assert flusher is not None
    flusher.cancel()

    results = await asyncio.wait_for(
        asyncio.gather(*callers, late, return_exceptions=True), timeout=POLL
    )

    assert all(isinstance(r, asyncio.CancelledError) for r in results)


async def test_a_writer_cancelled_before_it_ran_does_not_block_later_checks(
    store: Store,
) -> None:
    queue = _watch(store.writer)
    first = asyncio.create_task(store.writer.record_check(check(DAY0)))
    await queue.until(1)  # handed over; the flusher task exists but has not run
    flusher = store.writer._flusher
    assert flusher is not None
    flusher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(first, timeout=POLL)

    await asyncio.wait_for(store.writer.record_check(check(DAY0 + 1)), timeout=POLL)

    assert await _stored_checks(store) == 1


async def test_a_batch_window_gathers_checks_that_arrive_apart(store: Store) -> None:
    clock = _WindowClock()
    writer = HistoryWriter(store.engine, batch_window=0.05, clock=clock)
    queue = _watch(writer)
    with _commits(store) as commits:
        first = asyncio.create_task(writer.record_check(check(DAY0)))
        await clock.window_open.wait()
        second = asyncio.create_task(writer.record_check(check(DAY0 + 1)))
        await queue.until(2)
        assert commits == []  # the window is still open
        assert len(queue) == 2
        await clock.advance(0.05)
        await asyncio.wait_for(asyncio.gather(first, second), timeout=POLL)

    assert len(commits) == 1
    assert await _stored_checks(store) == 2


# -- the catalogue's partial updates ------------------------------------------------------------


async def test_components_found_by_a_check_join_the_catalogue_with_it(store: Store) -> None:
    configured = [
        Component("api", TARGET_COMPONENT, "API", "Services", 0),
        Component("web", TARGET_COMPONENT, "Web", "Services", 10_000),
    ]
    await store.writer.sync_components(configured)

    async def revision() -> int:
        async with store.engine.connect() as connection:
            value = await connection.scalar(
                select(revisions.c.value).where(revisions.c.name == "catalogue")
            )
            return int(value or 0)

    before = await revision()
    await store.writer.record_check(
        check(DAY0, services=(sample("cache"),)),
        new_components=[Component("api", "cache", "Cache", "Services", 1)],
    )

    assert [(c.target, c.service) for c in await store.reader.components()] == [
        ("api", TARGET_COMPONENT),
        ("api", "cache"),
        ("web", TARGET_COMPONENT),
    ]
    assert await revision() == before + 1  # readers see the catalogue changed


async def test_a_lone_check_the_store_refuses_is_stored_as_failed(store: Store) -> None:
    bad = check(DAY0, target="hostile", services=(sample("database", consecutive_failures=2**70),))

    stored = await store.writer.record_check(bad)

    assert (stored.status, stored.error) == (Status.UNREACHABLE, "answer out of range")
    latest = await store.reader.latest("hostile")
    assert latest is not None
    assert (latest.record.status, latest.record.error) == (
        Status.UNREACHABLE,
        "answer out of range",
    )


async def test_a_failure_that_is_not_about_the_data_stores_no_stand_in(store: Store) -> None:
    """Only the database's word about a value makes a check "answer out of range": a driver
    failing otherwise fails the check, and nothing is stored in its name."""

    written: list[str | None] = []

    async def failing(batch: Any) -> None:
        written.extend(p.record.error for p in batch)
        raise RuntimeError("driver crashed")

    store.writer._write_checks = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await store.writer.record_check(check(DAY0, target="t0"))
    assert written == [None], "no stand-in was tried"
