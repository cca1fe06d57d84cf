"""Day strips: a component's settled daily roll-ups as one row, so that a 90-day view reads 50 rows
rather than 4,500. Whatever the strips hold, ``bars_many`` must answer what ``bars`` answers from
the roll-ups alone; on SQLite and PostgreSQL alike (the ``store`` fixture)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, insert, select

from monitor.store import TARGET_COMPONENT, Status
from monitor.store.reader import STRIP_DAYS, settled_day
from monitor.store.schema import day_strips, rollups
from monitor.store.strips import decode
from tests.monitor.store.support import DAY, DAY0, HOUR, Store, check, reading_engine, sample

NOW = DAY0 + 100 * DAY + 15 * HOUR
KEYS = [("api", TARGET_COMPONENT), ("api", "database"), ("web", TARGET_COMPONENT)]


def _rollup(target: str, service: str, day: float, seed: int) -> dict[str, object]:
    checks = 100 + seed % 7
    down = seed % 5 if seed % 3 == 0 else 0
    return {
        "target": target,
        "service": service,
        "period": "day",
        "start": int(day),
        "checks": checks,
        "up": checks - down,
        "worst": Status.UNHEALTHY.severity if down else Status.HEALTHY.severity,
        "latency_sum": 10.0 * checks + seed,
        "latency_count": checks if seed % 4 else 0,
        "latency_max": 40.0 + seed,
    }


async def _write_days(store: Store, keys: list[tuple[str, str]], days: Iterable[int]) -> None:
    days = list(days)  # used once per key
    async with store.engine.begin() as connection:
        await connection.execute(
            insert(rollups),
            [
                _rollup(target, service, DAY0 + d * DAY, d * 10 + n)
                for n, (target, service) in enumerate(keys)
                for d in days
            ],
        )


async def _by_bars(store: Store, keys: list[tuple[str, str]]) -> dict[tuple[str, str], object]:
    return {key: await store.reader.bars(*key, period="day", count=90, now=NOW) for key in keys}


async def test_bars_many_from_strips_equals_bars_from_rollups(store: Store) -> None:
    await _write_days(store, KEYS, range(99))  # up to the day before yesterday
    assert await store.writer.compact_day_strips(NOW) == len(KEYS)
    # After the compaction: yesterday and today (as the daemon goes on writing them).
    await store.writer.record_check(check(DAY0 + 99 * DAY + HOUR, services=(sample("database"),)))
    await store.writer.record_check(
        check(NOW - HOUR, Status.UNHEALTHY, services=(sample("database", Status.UNHEALTHY),))
    )

    many = await store.reader.bars_many(KEYS, count=90, now=NOW)

    assert many == await _by_bars(store, KEYS)
    assert many[("api", TARGET_COMPONENT)][-1].worst is Status.UNHEALTHY  # today, from roll-ups
    assert len(many[("web", TARGET_COMPONENT)]) == 90


async def test_with_strips_only_the_unsettled_days_are_read_from_the_rollups(
    store: Store,
) -> None:
    await _write_days(store, KEYS, range(101))
    await store.writer.compact_day_strips(NOW)
    statements: list[tuple[str, Any]] = []

    def seen(connection: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    reading = reading_engine(store)
    event.listen(reading, "before_cursor_execute", seen)
    try:
        many = await store.reader.bars_many(KEYS, count=90, now=NOW)
    finally:
        event.remove(reading, "before_cursor_execute", seen)

    assert many == await _by_bars(store, KEYS)
    reads = [parameters for statement, parameters in statements if "FROM rollups" in statement]
    assert len(reads) == 1
    values = reads[0].values() if isinstance(reads[0], dict) else reads[0]
    days = [v for v in values if isinstance(v, int) and v > DAY0]
    assert min(days) == settled_day(NOW) + DAY  # yesterday and today, not 90 days


async def test_a_component_without_a_strip_is_read_from_the_rollups(store: Store) -> None:
    await _write_days(store, KEYS[:2], range(99))
    await store.writer.compact_day_strips(NOW)
    await _write_days(store, [("web", TARGET_COMPONENT)], range(40, 101))  # discovered since

    assert await store.reader.bars_many(KEYS, count=90, now=NOW) == await _by_bars(store, KEYS)


async def test_strips_are_rebuilt_once_a_day(store: Store) -> None:
    await _write_days(store, KEYS, range(99))
    assert await store.writer.compact_day_strips(NOW) == len(KEYS)
    assert await store.writer.compact_day_strips(NOW + HOUR) == 0  # current: nothing to do

    await _write_days(store, KEYS, range(99, 100))
    tomorrow = NOW + DAY
    assert await store.writer.compact_day_strips(tomorrow) == len(KEYS)

    async with store.engine.connect() as connection:
        last_days = set((await connection.execute(select(day_strips.c.last_day))).scalars())
    assert last_days == {settled_day(tomorrow)}
    assert await store.reader.bars_many(KEYS, count=90, now=tomorrow) == {
        key: await store.reader.bars(*key, period="day", count=90, now=tomorrow) for key in KEYS
    }


async def test_a_strip_holds_only_its_window(store: Store) -> None:
    await _write_days(store, KEYS[:1], range(99))
    late = DAY0 + 200 * DAY  # the strip's window: days 79 to 198

    await store.writer.compact_day_strips(late)

    async with store.engine.connect() as connection:
        days = (await connection.execute(select(day_strips.c.days))).scalars().all()
    assert len(days) == 1
    strip = decode(days[0])
    assert list(strip.starts) == [
        int(DAY0 + d * DAY) for d in range(200 - 2 - (STRIP_DAYS - 1), 199)
    ]
    assert strip.checks[-100:] == [0] * 100  # settled, nothing checked: days 99 to 198


async def test_without_strips_bars_many_still_answers(store: Store) -> None:
    await _write_days(store, KEYS, range(101))

    assert await store.reader.bars_many(KEYS, count=90, now=NOW) == await _by_bars(store, KEYS)


async def test_a_strip_that_starts_inside_the_window(store: Store) -> None:
    await _write_days(store, KEYS[:1], range(60, 99))  # first checked 40 days ago
    await _write_days(store, KEYS[1:2], range(0, 99, 3))  # every third day only
    await store.writer.compact_day_strips(NOW)

    many = await store.reader.bars_many(KEYS, count=90, now=NOW)

    assert many == await _by_bars(store, KEYS)
    assert [bar.checks > 0 for bar in many[KEYS[0]]] == [False] * 49 + [True] * 39 + [False] * 2
