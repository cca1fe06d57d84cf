"""Roll-ups are kept as checks are written; they must always equal a recomputation from the raw
checks, and long windows must read them alone (the raw rows are gone after a week)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, select

from monitor.figures import LAST_7D, LAST_30D, LAST_90D, Uptime, read_uptimes
from monitor.store import TARGET_COMPONENT, CheckRecord, ServiceSample, Status
from monitor.store.schema import checks, metadata, rollups, service_checks
from tests.monitor.store.support import DAY, DAY0, HOUR, Store, check, reading_engine, sample

_UP = {Status.HEALTHY.value, Status.DEGRADED.value}
_PERIODS = {"hour": int(HOUR), "day": int(DAY)}


@dataclass
class Rollup:
    checks: int = 0
    up: int = 0
    worst: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    latency_max: float = 0.0


Key = tuple[str, str, str, int]  # target, service, period, start


async def _recompute(store: Store) -> dict[Key, Rollup]:
    """Roll-ups from the raw rows, in the order the checks were written (ids ascending)."""
    async with store.engine.connect() as connection:
        raw = [
            (row.target, TARGET_COMPONENT, row.at, row.status, row.latency_ms, row.id)
            for row in await connection.execute(select(checks))
        ]
        raw += [
            (row.target, row.service, row.at, row.status, row.response_ms, row.check_id)
            for row in await connection.execute(select(service_checks))
        ]
    expected: dict[Key, Rollup] = {}
    for target, service, at, status, latency, _ in sorted(raw, key=lambda r: (r[5], r[1])):
        for period, length in _PERIODS.items():
            key = (target, service, period, int(at // length) * length)
            rollup = expected.setdefault(key, Rollup())
            rollup.checks += 1
            rollup.up += status in _UP
            rollup.worst = max(rollup.worst, Status(status).severity)
            if latency is not None:
                rollup.latency_sum += latency
                rollup.latency_count += 1
                rollup.latency_max = max(rollup.latency_max, latency)
    return expected


async def _stored(store: Store) -> dict[Key, Rollup]:
    async with store.engine.connect() as connection:
        return {
            (r.target, r.service, r.period, r.start): Rollup(
                r.checks, r.up, r.worst, r.latency_sum, r.latency_count, r.latency_max
            )
            for r in await connection.execute(select(rollups))
        }


async def _empty(store: Store) -> None:
    async with store.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(delete(table))


_latency = st.none() | st.floats(min_value=0.0, max_value=30_000.0, allow_nan=False)


@st.composite
def _records(draw: st.DrawFn) -> list[CheckRecord]:
    """Up to 40 checks of two targets over three days, a few landing in the same periods."""
    records = []
    for _ in range(draw(st.integers(min_value=1, max_value=40))):
        names = draw(st.lists(st.sampled_from(["database", "s3", "cache"]), unique=True))
        records.append(
            CheckRecord(
                target=draw(st.sampled_from(["api", "web"])),
                at=DAY0 + draw(st.floats(min_value=0.0, max_value=3 * DAY - 1e-3)),
                status=draw(st.sampled_from(Status)),
                latency_ms=draw(_latency),
                http_status=200,
                error=None,
                services=tuple(
                    ServiceSample(name, draw(st.sampled_from(Status)), draw(_latency))
                    for name in sorted(names)
                ),
            )
        )
    return records


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=_records(), together=st.booleans())
async def test_rollups_equal_a_recomputation_from_raw_checks(
    store: Store, records: list[CheckRecord], together: bool
) -> None:
    await _empty(store)  # one store for every example: start each from nothing
    await _write(store, records, together)

    expected, stored = await _recompute(store), await _stored(store)

    assert stored.keys() == expected.keys()
    for key, want in expected.items():
        got = stored[key]
        assert (got.checks, got.up, got.worst, got.latency_count, got.latency_max) == (
            want.checks,
            want.up,
            want.worst,
            want.latency_count,
            want.latency_max,
        ), key
        assert math.isclose(got.latency_sum, want.latency_sum, rel_tol=1e-12), key
    raw_checks = sum(r.checks for k, r in stored.items() if k[1] == "" and k[2] == "day")
    assert raw_checks == len(records)


async def _write(store: Store, records: list[CheckRecord], together: bool) -> None:
    """One by one, or all at once (the writer then commits them in batches)."""
    if together:
        await asyncio.gather(*(store.writer.record_check(r) for r in records))
    else:
        for record in records:
            await store.writer.record_check(record)


def _fold_states(records: list[CheckRecord]) -> dict[tuple[str, str], tuple[str, float, float]]:
    """Each component's (status, since, last seen), from checks taken in time order."""
    states: dict[tuple[str, str], tuple[str, float, float]] = {}
    for record in sorted(records, key=lambda r: r.at):
        seen = [(TARGET_COMPONENT, record.status)]
        seen += [(s.service, s.status) for s in record.services]
        for service, status in seen:
            key = (record.target, service)
            previous = states.get(key)
            if previous is not None and previous[0] == status.value:
                states[key] = (status.value, previous[1], record.at)
            else:
                states[key] = (status.value, record.at, record.at)
    return states


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=_records(), together=st.booleans())
async def test_component_states_equal_a_fold_of_the_checks(
    store: Store, records: list[CheckRecord], together: bool
) -> None:
    await _empty(store)
    records = sorted(records, key=lambda r: r.at)  # the daemon checks a target in time order
    await _write(store, records, together)

    stored = {
        key: (state.status.value, state.since, state.checked_at)
        for key, state in (await store.reader.states()).items()
    }

    assert stored == _fold_states(records)


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(reading_engine(store), "before_cursor_execute", _record)
    try:
        yield seen
    finally:
        event.remove(reading_engine(store), "before_cursor_execute", _record)


async def test_a_90_day_view_reads_rollups_only(store: Store) -> None:
    now = DAY0 + 90 * DAY + 20 * HOUR
    pattern = [
        Status.HEALTHY,
        Status.HEALTHY,
        Status.DEGRADED,
        Status.UNHEALTHY,
        Status.UNREACHABLE,
    ]
    n = 0
    for day in range(91):
        for hour in (2, 10, 18):
            status = pattern[(day * 3 + hour) % len(pattern)]
            await store.writer.record_check(
                check(
                    DAY0 + day * DAY + hour * HOUR,
                    status,
                    latency_ms=float(n % 97),
                    services=(sample("database", pattern[n % 3], response_ms=float(n % 13)),),
                )
            )
            n += 1

    async def figures() -> list[object]:
        reader = store.reader
        result: list[object] = []
        for service in (TARGET_COMPONENT, "database"):
            windows = (LAST_90D, LAST_30D, LAST_7D)
            result += [
                *(await read_uptimes(reader, [("api", service)], now, windows))[("api", service)],
                await reader.bars("api", service, period="day", count=90, now=now),
            ]
        return result

    with _statements(store) as seen:
        before = await figures()
    assert seen
    # Roll-ups, or their daily strips (compacted roll-ups, which the figures' series read).
    rolled = ("FROM rollups", "FROM day_strips")
    assert all(any(r in s for r in rolled) and "FROM checks" not in s for s in seen), seen

    # Raw checks older than two days go, and the hourly roll-ups with them.
    removed = await store.writer.apply_retention(now, raw_days=2, hourly_days=2, daily_days=400)
    assert removed["checks"] == 89 * 3
    assert removed["hour_rollups"] > 0
    assert removed["day_rollups"] == 0

    assert await figures() == before
    uptime_90d = before[0]
    assert isinstance(uptime_90d, Uptime) and uptime_90d.exact is not None
    assert 0.0 < uptime_90d.exact < 100.0
