"""Each replica's own checks and latest state, written with its target's check; retirement and
retention; on SQLite and PostgreSQL alike (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
import json
import math

from sqlalchemy import Table, func, select

from monitor.store import (
    CheckRecord,
    Instance,
    ReplicaCheck,
    ReplicaState,
    ServiceSample,
    Status,
)
from monitor.store.batch import MAX_SERVICES_JSON
from monitor.store.schema import checks, replica_checks
from monitor.store.writer import refused_check
from tests.monitor.store.support import DAY, DAY0, Store, check, sample

A, B, C = "10.0.0.5:8000", "10.0.0.6:8000", "[::1]:8000"


def replica(
    key: str,
    at: float,
    status: Status = Status.HEALTHY,
    *,
    target: str = "api",
    instance: Instance | None = None,
    latency_ms: float | None = 10.0,
    error: str | None = None,
    services: tuple[ServiceSample, ...] = (),
) -> ReplicaCheck:
    record = check(at, status, target=target, latency_ms=latency_ms, error=error, services=services)
    return ReplicaCheck(key, record, instance)


async def record(store: Store, at: float, *replicas: ReplicaCheck, target: str = "api") -> None:
    """A target's (aggregate) check at ``at`` with its replicas' checks."""
    await store.writer.record_check(check(at, target=target), replicas=replicas)


async def states(
    store: Store, target: str | None = "api", *, include_retired: bool = False
) -> dict[str, ReplicaState]:
    """The replicas of ``target`` by key."""
    found = await store.reader.replicas(target, include_retired=include_retired)
    return {s.replica: s for s in found}


async def replica_check_rows(store: Store) -> list[tuple[object, ...]]:
    query = select(
        replica_checks.c.target,
        replica_checks.c.replica,
        replica_checks.c.instance_id,
        replica_checks.c.instance_started_at,
        replica_checks.c.at,
        replica_checks.c.status,
        replica_checks.c.latency_ms,
        replica_checks.c.http_status,
        replica_checks.c.error,
    ).order_by(replica_checks.c.at, replica_checks.c.replica)
    async with store.engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]


async def count(store: Store, table: Table) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


# -- written with the check ---------------------------------------------------------------------


async def test_each_replica_is_written_with_its_targets_check(store: Store) -> None:
    database = sample(
        "database",
        Status.DEGRADED,
        response_ms=3.5,
        consecutive_failures=2,
        breaker_state="half_open",
        details={"circuit_breaker": {"failed_calls": 2}, "pool": [1, 2]},
    )
    first = replica(A, DAY0 + 1, instance=Instance("api-7f9c", DAY0 - 3600.5), services=(database,))
    second = replica(
        B, DAY0 + 1.25, Status.UNREACHABLE, latency_ms=None, error="connection refused"
    )

    await record(store, DAY0 + 1, first, second)

    assert await store.reader.replicas("api") == [
        ReplicaState(
            target="api",
            replica=A,
            instance=Instance("api-7f9c", DAY0 - 3600.5),
            status=Status.HEALTHY,
            since=DAY0 + 1,
            checked_at=DAY0 + 1,
            latency_ms=10.0,
            error=None,
            services=(database,),
        ),
        ReplicaState(
            target="api",
            replica=B,
            instance=None,
            status=Status.UNREACHABLE,
            since=DAY0 + 1.25,
            checked_at=DAY0 + 1.25,
            latency_ms=None,
            error="connection refused",
            services=(),
        ),
    ]
    assert await replica_check_rows(store) == [
        ("api", A, "api-7f9c", DAY0 - 3600.5, DAY0 + 1, "healthy", 10.0, 200, None),
        ("api", B, None, None, DAY0 + 1.25, "unreachable", None, 200, "connection refused"),
    ]
    assert await count(store, checks) == 1  # the target's own check, as before


async def test_a_check_without_replicas_writes_no_replica_rows(store: Store) -> None:
    await store.writer.record_check(check(DAY0))

    assert await store.reader.replicas() == []
    assert await count(store, replica_checks) == 0


async def test_replicas_are_sorted_and_read_by_target(store: Store) -> None:
    await record(store, DAY0, replica(C, DAY0, target="web"), target="web")
    await record(store, DAY0, replica(B, DAY0), replica(A, DAY0))

    assert [(s.target, s.replica) for s in await store.reader.replicas()] == [
        ("api", A),
        ("api", B),
        ("web", C),
    ]
    assert [s.replica for s in await store.reader.replicas("web")] == [C]
    assert await store.reader.replicas("nothing") == []


async def test_checks_committed_together_write_every_replica_in_one_transaction(
    store: Store,
) -> None:
    targets = [f"t{n}" for n in range(40)]

    await asyncio.gather(
        *(
            store.writer.record_check(
                check(DAY0 + n, target=t),
                replicas=[replica(A, DAY0 + n, target=t), replica(B, DAY0 + n, target=t)],
            )
            for n, t in enumerate(targets)
        )
    )

    assert await count(store, replica_checks) == 80
    assert len(await store.reader.replicas()) == 80


# -- since ---------------------------------------------------------------------------------------


async def test_since_holds_while_the_status_holds_and_moves_when_it_changes(store: Store) -> None:
    await record(store, DAY0, replica(A, DAY0), replica(B, DAY0))
    await record(store, DAY0 + 10, replica(A, DAY0 + 10), replica(B, DAY0 + 10, Status.UNHEALTHY))
    await record(store, DAY0 + 20, replica(A, DAY0 + 20), replica(B, DAY0 + 20, Status.UNHEALTHY))

    found = await states(store)

    assert (found[A].status, found[A].since, found[A].checked_at) == (
        Status.HEALTHY,
        DAY0,
        DAY0 + 20,
    )
    assert (found[B].status, found[B].since, found[B].checked_at) == (
        Status.UNHEALTHY,
        DAY0 + 10,
        DAY0 + 20,
    )


async def test_since_within_one_batch_is_the_last_change(store: Store) -> None:
    """Three checks of one target in one transaction: the replica's state is folded in time
    order (whatever order the checks were handed over in)."""
    await record(store, DAY0, replica(A, DAY0))
    statuses = [
        (DAY0 + 30, Status.DEGRADED),
        (DAY0 + 10, Status.UNHEALTHY),
        (DAY0 + 20, Status.DEGRADED),
    ]

    await asyncio.gather(
        *(store.writer.record_check(check(at), replicas=[replica(A, at, s)]) for at, s in statuses)
    )

    found = (await states(store))[A]
    assert (found.status, found.since, found.checked_at) == (Status.DEGRADED, DAY0 + 20, DAY0 + 30)


async def test_a_late_check_does_not_move_a_replica_back(store: Store) -> None:
    await record(store, DAY0 + 10, replica(A, DAY0 + 10, Status.UNHEALTHY))

    await record(store, DAY0, replica(A, DAY0))

    found = (await states(store))[A]
    assert (found.status, found.since, found.checked_at) == (Status.UNHEALTHY, DAY0 + 10, DAY0 + 10)
    assert await count(store, replica_checks) == 2  # its raw check is kept all the same


async def test_a_restarted_replica_shows_its_new_instance(store: Store) -> None:
    await record(store, DAY0, replica(A, DAY0, instance=Instance("one", DAY0 - 100)))
    await record(store, DAY0 + 10, replica(A, DAY0 + 10, instance=Instance("two", DAY0 + 5)))

    found = (await states(store))[A]
    assert (found.instance, found.since) == (Instance("two", DAY0 + 5), DAY0)


# -- retirement ----------------------------------------------------------------------------------


async def test_a_retired_replica_is_left_out_unless_asked_for(store: Store) -> None:
    await record(store, DAY0, replica(A, DAY0), replica(B, DAY0))
    await record(store, DAY0, replica(A, DAY0, target="web"), target="web")

    await store.writer.retire_replicas("api", [A, "10.9.9.9:1"], DAY0 + 5)  # (one never seen)

    assert [s.replica for s in await store.reader.replicas("api")] == [B]
    everything = await states(store, include_retired=True)
    assert (everything[A].retired_at, everything[B].retired_at) == (DAY0 + 5, None)
    assert (await states(store, "web"))[A].retired_at is None  # another target's, untouched


async def test_retired_again_keeps_its_first_retirement_time(store: Store) -> None:
    await record(store, DAY0, replica(A, DAY0))
    await store.writer.retire_replicas("api", [A], DAY0 + 5)

    await store.writer.retire_replicas("api", [A], DAY0 + 50)

    assert (await states(store, include_retired=True))[A].retired_at == DAY0 + 5


async def test_a_replica_seen_again_after_retirement_is_not_retired(store: Store) -> None:
    await record(store, DAY0, replica(A, DAY0))
    await store.writer.retire_replicas("api", [A], DAY0 + 5)

    await record(store, DAY0 + 60, replica(A, DAY0 + 60))

    found = (await states(store))[A]
    assert (found.retired_at, found.checked_at) == (None, DAY0 + 60)


async def test_a_replica_seen_again_after_retirement_is_healthy_since_it_came_back(
    store: Store,
) -> None:
    """A key is an address: a pod IP reused by another process, answering with the status the
    old one had, is that status since it came back, not since the old pod's first check."""
    await record(store, DAY0, replica(A, DAY0, instance=Instance("old", DAY0 - 100)))
    await record(store, DAY0 + 10, replica(A, DAY0 + 10, instance=Instance("old", DAY0 - 100)))
    await store.writer.retire_replicas("api", [A], DAY0 + 15)

    await record(store, DAY0 + 60, replica(A, DAY0 + 60, instance=Instance("new", DAY0 + 50)))
    await record(store, DAY0 + 70, replica(A, DAY0 + 70, instance=Instance("new", DAY0 + 50)))

    found = (await states(store))[A]
    assert (found.status, found.since, found.checked_at) == (Status.HEALTHY, DAY0 + 60, DAY0 + 70)


async def test_a_replica_back_from_retirement_in_one_batch_is_since_its_first_check_back(
    store: Store,
) -> None:
    await record(store, DAY0, replica(A, DAY0))
    await store.writer.retire_replicas("api", [A], DAY0 + 5)

    await asyncio.gather(
        *(
            store.writer.record_check(check(at), replicas=[replica(A, at)])
            for at in (DAY0 + 70, DAY0 + 60)
        )
    )

    found = (await states(store))[A]
    assert (found.since, found.checked_at, found.retired_at) == (DAY0 + 60, DAY0 + 70, None)


async def test_retiring_moves_last_change(store: Store) -> None:
    await record(store, DAY0, replica(A, DAY0))
    before = await store.reader.last_change()

    await store.writer.retire_replicas("api", [A], DAY0 + 5)

    assert await store.reader.last_change() > before


async def test_retiring_nothing_writes_nothing(store: Store) -> None:
    before = await store.reader.last_change()

    await store.writer.retire_replicas("api", [], DAY0)

    assert await store.reader.last_change() == before


# -- what comes from outside is bounded ---------------------------------------------------------


async def test_long_keys_and_instance_ids_are_cut_to_their_columns(store: Store) -> None:
    key, instance = "k" * 5000, "i" * 5000

    await record(
        store, DAY0, replica(key, DAY0, instance=Instance(instance, math.inf), error="e" * 900)
    )

    [found] = await store.reader.replicas()
    assert (found.replica, found.instance, found.error) == (
        "k" * 200,
        Instance("i" * 200, None),
        "e" * 200,
    )
    await store.writer.retire_replicas("api", [key], DAY0 + 1)  # the same key, cut the same way
    assert await store.reader.replicas() == []


async def test_odd_figures_of_a_replica_do_not_sink_its_targets_check(store: Store) -> None:
    odd = ReplicaCheck(A, CheckRecord("api", DAY0, Status.HEALTHY, 1e300, 10**30, None), None)

    stored = await store.writer.record_check(check(DAY0), replicas=[odd])

    assert stored == check(DAY0)
    [found] = await store.reader.replicas()
    assert found.latency_ms is None
    assert (await replica_check_rows(store))[0][6:8] == (None, None)


async def test_text_a_database_cannot_hold_is_left_out(store: Store) -> None:
    """NUL (PostgreSQL's text refuses it) and a lone surrogate (UTF-8 cannot encode it)."""
    key = "10.0.0.5:8000\x00\ud800"

    await record(
        store, DAY0, replica(key, DAY0, instance=Instance("a\x00b\udfff", None), error="x\x00")
    )

    [found] = await store.reader.replicas()
    assert (found.replica, found.instance, found.error) == (A, Instance("ab", None), "x")
    assert await count(store, checks) == 1


async def test_a_refused_check_keeps_its_replicas_rows(store: Store) -> None:
    """The target's check holds a number no column takes (stored as a failed check in its
    place): its replicas' rows, bounded, are written all the same."""
    hostile = (sample("database", consecutive_failures=10**30),)
    aggregate = check(DAY0, services=hostile)

    stored = await store.writer.record_check(
        aggregate, replicas=[replica(A, DAY0, services=hostile), replica(B, DAY0)]
    )

    assert stored == refused_check(aggregate)
    found = await states(store)
    assert sorted(found) == [A, B]
    assert found[A].services[0].consecutive_failures == 10**30  # (in its JSON, as it came)


async def test_services_past_the_size_cap_lose_their_details_first(store: Store) -> None:
    big = {f"key{n}": "x" * 200 for n in range(32)}  # ~7 KiB of details a service
    services = tuple(sample(f"s{n:02}", details=big) for n in range(64))

    await record(store, DAY0, replica(A, DAY0, services=services))

    [found] = await store.reader.replicas()
    assert [s.service for s in found.services] == [s.service for s in services]
    assert all(s.details == {} for s in found.services)
    assert found.services[0].response_ms == 5.0  # the figures are kept
    async with store.engine.connect() as connection:
        text = str(await connection.scalar(select(replica_checks.c.services)))
    assert len(text) <= MAX_SERVICES_JSON and json.loads(text)[0]["service"] == "s00"


# -- retention -----------------------------------------------------------------------------------


async def test_retention_removes_old_replica_checks_and_long_retired_replicas(
    store: Store,
) -> None:
    now = DAY0 + 30 * DAY
    await record(store, now - 10 * DAY, replica(A, now - 10 * DAY), replica(B, now - 10 * DAY))
    await record(store, now - 9 * DAY, replica(B, now - 9 * DAY), replica(C, now - 9 * DAY))
    await store.writer.retire_replicas("api", [A], now - 9 * DAY)  # long gone
    await record(store, now - DAY, replica(B, now - DAY), replica(C, now - DAY))
    await store.writer.retire_replicas("api", [C], now - DAY)  # retired lately

    removed = await store.writer.apply_retention(now, raw_days=7, hourly_days=30, daily_days=60)

    assert (removed["replica_checks"], removed["replicas"]) == (4, 1)
    assert [row[1] for row in await replica_check_rows(store)] == [B, C]
    everything = await states(store, include_retired=True)
    assert sorted(everything) == [B, C]
    assert everything[C].retired_at == now - DAY


async def test_retention_removes_replicas_not_seen_for_the_raw_window(store: Store) -> None:
    """A target taken out of the config has its replicas retired by nobody: they go when
    nothing of their history is left."""
    now = DAY0 + 30 * DAY
    await record(store, now - 10 * DAY, replica(A, now - 10 * DAY))
    await record(store, now - DAY, replica(A, now - DAY, target="web"), target="web")

    await store.writer.apply_retention(now, raw_days=7, hourly_days=30, daily_days=60)

    assert [(s.target, s.replica) for s in await store.reader.replicas()] == [("web", A)]
