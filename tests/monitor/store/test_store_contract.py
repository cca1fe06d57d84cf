"""The store's contract, run over SQLite and PostgreSQL alike (the ``store`` fixture).

Times are built from ``DAY0`` (a day boundary) so that every hour and day a check falls in is
known, and every expected figure below is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import delete, event, func, insert, select, text

from monitor.figures import LAST_7D, LAST_24H, LAST_30D, LAST_90D, Uptime, Window, read_uptimes
from monitor.store import (
    TARGET_COMPONENT,
    AlertState,
    Component,
    IncidentEvent,
    IncidentState,
    LatencyPoint,
    Status,
    UptimeBar,
)
from monitor.store.reading import checks as checks_module
from monitor.store.reading.checks import ARMS_PER_STATEMENT
from monitor.store.schema import checks, components, rollups, service_checks
from tests.monitor.store.support import DAY, DAY0, HOUR, Store, check, sample
from tests.support.polling import eventually

# -- checks and latest() ------------------------------------------------------------------------


async def test_latest_is_none_for_a_target_never_checked(store: Store) -> None:
    assert await store.reader.latest("api") is None
    assert await store.reader.targets() == []


async def test_a_check_round_trips_with_its_services_and_details(store: Store) -> None:
    record = check(
        DAY0 + 12.25,
        Status.DEGRADED,
        latency_ms=42.5,
        http_status=200,
        services=(
            sample(
                "database",
                Status.HEALTHY,
                response_ms=3.5,
                consecutive_failures=0,
                breaker_state="closed",
                details={
                    "circuit_breaker": {
                        "state": "closed",
                        "failed_calls": 2,
                        "successful_calls": 1234,
                        "failure_rate": 0.25,
                    },
                    "details": {"pool_size": 10, "checked_out": 3, "exhausted_total": 0},
                    "critical": True,
                    "reason": None,
                    "last_error": "TimeoutError",
                },
            ),
            sample(
                "s3",
                Status.UNHEALTHY,
                response_ms=None,
                consecutive_failures=7,
                breaker_state="open",
                details={},
            ),
        ),
    )
    await store.writer.record_check(record)

    latest = await store.reader.latest("api")

    assert latest is not None
    assert latest.record == record
    assert latest.since == DAY0 + 12.25
    assert await store.reader.targets() == ["api"]


async def test_a_failed_probe_round_trips_as_data(store: Store) -> None:
    record = check(
        DAY0,
        Status.UNREACHABLE,
        latency_ms=5000.0,
        http_status=None,
        error="timeout",
    )
    await store.writer.record_check(record)

    latest = await store.reader.latest("api")

    assert latest is not None
    assert latest.record == record


async def test_latest_is_the_newest_check_not_the_last_written(store: Store) -> None:
    await store.writer.record_check(check(DAY0 + 20, Status.UNHEALTHY))
    await store.writer.record_check(check(DAY0 + 10, Status.HEALTHY))

    latest = await store.reader.latest("api")

    assert latest is not None
    assert (latest.record.at, latest.record.status) == (DAY0 + 20, Status.UNHEALTHY)


@pytest.mark.parametrize(
    ("statuses", "expected_since"),
    [
        pytest.param(["healthy"], 0, id="one-check"),
        pytest.param(["healthy", "healthy", "healthy"], 0, id="never-changed"),
        pytest.param(["healthy", "healthy", "unhealthy", "unhealthy"], 2, id="went-down"),
        pytest.param(["healthy", "unhealthy", "unhealthy", "healthy"], 3, id="recovered"),
        pytest.param(["healthy", "unhealthy", "healthy", "healthy"], 2, id="flapped-back"),
        pytest.param(["degraded", "unhealthy", "degraded", "degraded"], 2, id="back-to-degraded"),
        pytest.param(["unreachable", "healthy", "unreachable"], 2, id="unreachable-again"),
    ],
)
async def test_since_is_the_first_check_of_the_current_status_run(
    store: Store, statuses: list[str], expected_since: int
) -> None:
    for n, status in enumerate(statuses):
        await store.writer.record_check(check(DAY0 + 10 * n, Status(status)))

    latest = await store.reader.latest("api")

    assert latest is not None
    assert latest.record.status == Status(statuses[-1])
    assert latest.since == DAY0 + 10 * expected_since


async def test_targets_do_not_share_history(store: Store) -> None:
    await store.writer.record_check(check(DAY0, Status.HEALTHY, target="web"))
    await store.writer.record_check(check(DAY0 + 10, Status.UNHEALTHY, target="api"))
    await store.writer.record_check(check(DAY0 + 20, Status.HEALTHY, target="api"))
    await store.writer.record_check(check(DAY0 + 30, Status.UNHEALTHY, target="web"))

    api, web = await store.reader.latest("api"), await store.reader.latest("web")

    assert api is not None
    assert web is not None
    assert (api.record.status, api.since) == (Status.HEALTHY, DAY0 + 20)
    assert (web.record.status, web.since) == (Status.UNHEALTHY, DAY0 + 30)
    assert await store.reader.targets() == ["api", "web"]


async def test_service_since_follows_the_service_not_the_target(store: Store) -> None:
    database = ["healthy", "unhealthy", "unhealthy", "healthy", "healthy"]
    for n, status in enumerate(database):
        await store.writer.record_check(
            check(
                DAY0 + 10 * n,
                Status.HEALTHY if n % 2 else Status.DEGRADED,
                services=(sample("database", Status(status)), sample("s3", Status.HEALTHY)),
            )
        )

    reader = store.reader
    assert await reader.service_since("api", "database", Status.HEALTHY) == DAY0 + 30
    assert await reader.service_since("api", "s3", Status.HEALTHY) == DAY0
    # Not its status now (or never seen at all): no "since".
    assert await reader.service_since("api", "database", Status.UNHEALTHY) is None
    assert await reader.service_since("api", "cache", Status.HEALTHY) is None
    assert await reader.service_since("web", "database", Status.HEALTHY) is None


async def test_recent_latencies_are_the_latest_oldest_first(store: Store) -> None:
    latencies: list[float | None] = [10.0, 20.0, None, 40.0, 50.0, 60.0]
    order = [3, 0, 5, 1, 4, 2]  # written out of time order
    for n in order:
        await store.writer.record_check(
            check(
                DAY0 + n,
                latency_ms=latencies[n],
                services=(sample("database", response_ms=(latencies[n] or 0.0) / 10),),
            )
        )
        await store.writer.record_check(check(DAY0 + n, target="other", latency_ms=999.0))

    reader = store.reader
    assert await reader.recent_latencies("api") == latencies
    assert await reader.recent_latencies("api", limit=3) == [40.0, 50.0, 60.0]
    assert await reader.recent_latencies("api", "database", limit=4) == [0.0, 4.0, 5.0, 6.0]
    assert await reader.recent_latencies("api", "s3") == []
    assert await reader.recent_latencies("nobody") == []


# -- the TUI's batched reads: the same answers as one component at a time ------------------------


@pytest.fixture(params=[2, ARMS_PER_STATEMENT], ids=["statements-of-2-arms", "one-statement"])
def arms_per_statement(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Many components are read in statements of a few arms each: with 2 a read of five
    components takes three statements, and each must be answered."""
    arms = int(request.param)
    monkeypatch.setattr(checks_module, "ARMS_PER_STATEMENT", arms)
    return arms


async def _write_fleet_history(store: Store) -> None:
    """Three targets with histories of their own (written out of time order), services that
    come and go, and statuses that change."""
    runs = {
        "api": ["healthy", "unhealthy", "unhealthy", "healthy", "healthy"],
        "web": ["degraded", "degraded", "degraded"],
        "jobs": ["unreachable", "healthy", "unreachable"],
    }
    for target, statuses in runs.items():
        for n in reversed(range(len(statuses))):
            services = (
                sample("database", Status(statuses[n]), response_ms=float(n), details={"n": n}),
                *((sample("s3", response_ms=None, breaker_state="open"),) if n % 2 else ()),
            )
            await store.writer.record_check(
                check(
                    DAY0 + 10 * n + len(target),
                    Status(statuses[n]),
                    target=target,
                    latency_ms=None if n == 1 else 100.0 * n + len(target),
                    services=services,
                )
            )


async def test_latest_many_answers_as_latest_does_for_each_target(
    store: Store, arms_per_statement: int
) -> None:
    await _write_fleet_history(store)
    targets = ["api", "web", "nobody", "jobs", "api"]

    many = await store.reader.latest_many(targets)

    expected = {t: await store.reader.latest(t) for t in ("api", "web", "jobs")}
    assert many == expected
    assert "nobody" not in many
    api = many["api"]
    assert (api.record.status, api.since) == (Status.HEALTHY, DAY0 + 30 + 3)
    assert [s.service for s in api.record.services] == ["database"]
    assert [s.service for s in many["jobs"].record.services] == ["database"]
    assert many["web"].since == DAY0 + 3
    assert await store.reader.latest_many([]) == {}


async def test_recent_latencies_many_answers_as_recent_latencies_does(
    store: Store, arms_per_statement: int
) -> None:
    await _write_fleet_history(store)
    components = [
        ("api", TARGET_COMPONENT),
        ("api", "database"),
        ("api", "s3"),
        ("web", TARGET_COMPONENT),
        ("web", "cache"),
        ("nobody", TARGET_COMPONENT),
        ("jobs", "database"),
    ]

    for limit in (30, 2):
        many = await store.reader.recent_latencies_many(components, limit=limit)
        assert list(many) == components
        for target, service in components:
            one = await store.reader.recent_latencies(target, service, limit=limit)
            assert many[(target, service)] == one, (target, service, limit)
    many = await store.reader.recent_latencies_many(components)
    assert many[("api", TARGET_COMPONENT)] == [3.0, None, 203.0, 303.0, 403.0]
    assert many[("api", "s3")] == [None, None]
    assert many[("web", "cache")] == [] and many[("nobody", TARGET_COMPONENT)] == []
    assert await store.reader.recent_latencies_many([]) == {}


# -- the component catalogue --------------------------------------------------------------------


async def test_components_come_back_in_position_order(store: Store) -> None:
    catalogue = [
        Component("api", TARGET_COMPONENT, "QuestCity API", "Production", 0),
        Component("api", "database", "Quests and accounts", "Production", 1),
        Component("api", "s3", "Photos", "Production", 2),
        Component("staging", TARGET_COMPONENT, "Staging", "Other", 3),
    ]
    await store.writer.sync_components([catalogue[2], catalogue[0], catalogue[3], catalogue[1]])

    assert await store.reader.components() == catalogue


async def test_sync_components_replaces_the_whole_catalogue(store: Store) -> None:
    await store.writer.sync_components(
        [
            Component("api", TARGET_COMPONENT, "API", "Production", 0),
            Component("old", TARGET_COMPONENT, "Retired target", "Production", 1),
        ]
    )
    renamed = [
        Component("api", "database", "Database", "Production", 0),
        Component("api", TARGET_COMPONENT, "QuestCity API", "Core", 1),
    ]
    await store.writer.sync_components(renamed)
    assert await store.reader.components() == renamed

    await store.writer.sync_components([])
    assert await store.reader.components() == []


async def test_concurrent_catalogue_syncs_do_not_collide(
    store: Store, request: pytest.FixtureRequest
) -> None:
    """Two syncs at once (the daemon's first checks of several targets each find new services):
    the later one waits for the earlier, then replaces its catalogue."""
    first = [
        Component("api", TARGET_COMPONENT, "API", "Production", 0),
        Component("api", "database", "Database", "Production", 1),
    ]
    second = [*first, Component("api", "s3", "Photos", "Production", 2)]
    await store.writer.sync_components(first)
    rows = [
        {
            "target": c.target,
            "service": c.service,
            "display_name": c.display_name,
            "group_name": c.group,
            "position": c.position,
        }
        for c in first
    ]

    async with store.engine.connect() as other:
        # Another sync caught between its statements: deleted and re-inserted, not committed.
        transaction = await other.begin()
        await other.execute(delete(components))
        await other.execute(insert(components), rows)
        racing = asyncio.create_task(store.writer.sync_components(second))
        if store.backend == "postgresql":
            await _until_waiting_on_a_lock(store)
        else:  # SQLite: it has read the rows and waits for the write lock (busy_timeout)
            await _until_it_writes(store, "INSERT INTO components")
        await transaction.commit()
    await racing

    assert await store.reader.components() == second


async def _until_it_writes(store: Store, statement: str) -> None:
    """Wait until a statement starting with ``statement`` is sent (it is then about to wait
    for the lock, or to take it)."""
    sent = asyncio.Event()

    def before(connection: Any, cursor: Any, text: str, *rest: Any) -> None:
        if text.startswith(statement):
            sent.set()

    event.listen(store.engine.sync_engine, "before_cursor_execute", before)
    try:
        await asyncio.wait_for(sent.wait(), 10.0)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", before)


async def _until_waiting_on_a_lock(store: Store) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )

    async def waiting() -> bool:
        async with store.engine.connect() as connection:
            return bool(await connection.scalar(query))

    await eventually(waiting, "the second sync waiting for the first", within=10.0, every=0.01)


# -- bars ---------------------------------------------------------------------------------------


async def test_daily_bars_cover_every_day_with_the_worst_state(store: Store) -> None:
    now = DAY0 + 3 * DAY + 5 * HOUR  # day 3
    # day 0: outside a 3-day window; day 1: healthy and degraded; day 2: nothing;
    # day 3: healthy, unhealthy, unreachable (no latency).
    await store.writer.record_check(check(DAY0 + 100, Status.UNHEALTHY, latency_ms=1.0))
    await store.writer.record_check(check(DAY0 + DAY + 10, Status.HEALTHY, latency_ms=10.0))
    await store.writer.record_check(check(DAY0 + DAY + HOUR, Status.DEGRADED, latency_ms=30.0))
    await store.writer.record_check(check(DAY0 + 3 * DAY, Status.HEALTHY, latency_ms=20.0))
    await store.writer.record_check(
        check(DAY0 + 3 * DAY + HOUR, Status.UNREACHABLE, latency_ms=None, error="timeout")
    )
    await store.writer.record_check(
        check(DAY0 + 3 * DAY + 2 * HOUR, Status.UNHEALTHY, latency_ms=40)
    )

    bars = await store.reader.bars("api", period="day", count=3, now=now)

    assert bars == [
        UptimeBar(DAY0 + DAY, checks=2, up=2, worst=Status.DEGRADED, avg_latency_ms=20.0),
        UptimeBar(DAY0 + 2 * DAY, checks=0, up=0, worst=Status.UNKNOWN, avg_latency_ms=None),
        UptimeBar(DAY0 + 3 * DAY, checks=3, up=1, worst=Status.UNREACHABLE, avg_latency_ms=30.0),
    ]
    assert [bar.uptime for bar in bars] == [100.0, None, pytest.approx(100 / 3)]


async def test_hourly_bars_of_a_service(store: Store) -> None:
    now = DAY0 + 10 * HOUR + 59 * 60  # in hour 10

    async def at(hour: int, minute: int, status: Status, response_ms: float | None) -> None:
        await store.writer.record_check(
            check(
                DAY0 + hour * HOUR + minute * 60,
                services=(sample("database", status, response_ms=response_ms),),
            )
        )

    await at(6, 0, Status.UNHEALTHY, 1.0)  # before the window
    await at(7, 0, Status.HEALTHY, 2.0)
    await at(7, 59, Status.UNHEALTHY, 4.0)
    await at(9, 30, Status.DEGRADED, None)
    await at(10, 0, Status.HEALTHY, 8.0)
    await at(11, 0, Status.UNREACHABLE, 8.0)  # after "now": not a bar of this window

    bars = await store.reader.bars("api", "database", period="hour", count=4, now=now)

    assert bars == [
        UptimeBar(DAY0 + 7 * HOUR, checks=2, up=1, worst=Status.UNHEALTHY, avg_latency_ms=3.0),
        UptimeBar(DAY0 + 8 * HOUR, checks=0, up=0, worst=Status.UNKNOWN, avg_latency_ms=None),
        UptimeBar(DAY0 + 9 * HOUR, checks=1, up=1, worst=Status.DEGRADED, avg_latency_ms=None),
        UptimeBar(DAY0 + 10 * HOUR, checks=1, up=1, worst=Status.HEALTHY, avg_latency_ms=8.0),
    ]
    # The target itself was healthy throughout: its bars are not the service's.
    target_bars = await store.reader.bars("api", period="hour", count=4, now=now)
    assert [b.worst for b in target_bars] == [
        Status.HEALTHY,
        Status.UNKNOWN,
        Status.HEALTHY,
        Status.HEALTHY,
    ]


async def test_bars_of_an_unknown_component_are_all_empty(store: Store) -> None:
    bars = await store.reader.bars("nobody", period="day", count=90, now=DAY0 + 0.5 * DAY)

    assert len(bars) == 90
    assert bars[-1].start == DAY0
    assert bars[0].start == DAY0 - 89 * DAY
    assert all(b.checks == 0 and b.worst is Status.UNKNOWN for b in bars)


# -- uptime (monitor.figures over the roll-ups: the one rule, on every backend) ------------------


async def test_uptime_over_24_hours_reads_hourly_rollups(store: Store) -> None:
    now = DAY0 + 2 * DAY + 12 * HOUR + 1800  # 12:30 on day 2
    # The last 24 hourly periods are 13:00 on day 1 .. 12:00 on day 2.
    plan = [
        (DAY0 + DAY + 11 * HOUR, [Status.UNHEALTHY] * 5),  # before the window
        (DAY0 + DAY + 13 * HOUR, [Status.HEALTHY, Status.UNHEALTHY]),
        (DAY0 + 2 * DAY + 3 * HOUR, [Status.DEGRADED, Status.HEALTHY, Status.UNREACHABLE]),
        (DAY0 + 2 * DAY + 12 * HOUR, [Status.HEALTHY, Status.HEALTHY, Status.UNKNOWN]),
    ]
    for start, statuses in plan:
        for n, status in enumerate(statuses):
            await store.writer.record_check(check(start + 60 * n, status))

    # 8 checks in the window, 5 of them healthy or degraded.
    assert await uptime_of(store, TARGET_COMPONENT, LAST_24H, now) == Uptime(8, 5)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        pytest.param(7, 50.0, id="7d"),  # days 84..90: 3 of 6
        pytest.param(30, 18.75, id="30d"),  # days 61..90: 3 of 16
        pytest.param(90, 35.0, id="90d"),  # days 1..90: 7 of 20
    ],
)
async def test_uptime_over_days_reads_daily_rollups(
    store: Store, days: int, expected: float
) -> None:
    now = DAY0 + 90 * DAY + 12 * HOUR
    plan = {
        0: [Status.UNHEALTHY] * 5,  # before every window
        20: [Status.HEALTHY] * 4,
        70: [Status.UNHEALTHY] * 10,
        85: [Status.DEGRADED, Status.UNHEALTHY, Status.UNREACHABLE, Status.UNHEALTHY],
        90: [Status.HEALTHY, Status.HEALTHY],
    }
    for day, statuses in plan.items():
        for n, status in enumerate(statuses):
            await store.writer.record_check(
                check(
                    DAY0 + day * DAY + n * HOUR,
                    Status.HEALTHY,
                    services=(sample("database", status),),
                )
            )

    window = {7: LAST_7D, 30: LAST_30D, 90: LAST_90D}[days]
    assert (await uptime_of(store, "database", window, now)).exact == expected
    assert (await uptime_of(store, TARGET_COMPONENT, window, now)).text == "100%"


async def test_uptime_is_none_without_checks_in_the_window(store: Store) -> None:
    await store.writer.record_check(check(DAY0, Status.HEALTHY))

    assert await uptime_of(store, TARGET_COMPONENT, LAST_24H, DAY0 + 3 * DAY) == Uptime()
    assert await uptime_of(store, TARGET_COMPONENT, LAST_7D, DAY0 + 30 * DAY) == Uptime()
    nobody = await read_uptimes(store.reader, [("nobody", TARGET_COMPONENT)], DAY0, (LAST_24H,))
    assert nobody[("nobody", TARGET_COMPONENT)] == (Uptime(),)


async def test_uptime_over_24_hours_is_this_hour_and_the_23_before_it(store: Store) -> None:
    now = DAY0 + DAY + 12 * HOUR  # 12:00:00 on day 1: the window is 13:00 on day 0 .. 12:00
    await store.writer.record_check(check(DAY0 + 12 * HOUR + 60, Status.UNHEALTHY))
    await store.writer.record_check(check(DAY0 + DAY + 11 * HOUR, Status.HEALTHY))

    assert await uptime_of(store, TARGET_COMPONENT, LAST_24H, now) == Uptime(1, 1)


async def uptime_of(store: Store, service: str, window: Window, now: float) -> Uptime:
    (figure,) = (await read_uptimes(store.reader, [("api", service)], now, (window,)))[
        ("api", service)
    ]
    return figure


# -- latency series -----------------------------------------------------------------------------


async def test_latency_series_is_hourly_average_and_max_oldest_first(store: Store) -> None:
    now = DAY0 + 5 * HOUR + 10
    for minute, latency in [(0, 10.0), (20, 30.0), (40, 50.0)]:
        await store.writer.record_check(check(DAY0 + 3 * HOUR + minute * 60, latency_ms=latency))
    await store.writer.record_check(check(DAY0 + 4 * HOUR, Status.UNREACHABLE, latency_ms=None))
    await store.writer.record_check(check(DAY0 + 5 * HOUR, latency_ms=7.0))
    await store.writer.record_check(check(DAY0 + HOUR, latency_ms=1000.0))  # before the window

    series = await store.reader.latency_series("api", hours=3, now=now)

    # Hour 4 has a check but no latency: no point rather than a zero.
    assert series == [
        LatencyPoint(DAY0 + 3 * HOUR, avg_ms=30.0, max_ms=50.0),
        LatencyPoint(DAY0 + 5 * HOUR, avg_ms=7.0, max_ms=7.0),
    ]


# -- incidents ----------------------------------------------------------------------------------


async def test_an_opened_incident_is_open_with_its_first_event(store: Store) -> None:
    incident_id = await store.writer.open_incident(
        "api", "database", Status.DEGRADED, DAY0, "Quests and accounts is degraded"
    )

    incident = await store.reader.incident(incident_id)

    assert incident is not None
    assert (incident.target, incident.service, incident.state) == (
        "api",
        "database",
        IncidentState.OPEN,
    )
    assert (incident.impact, incident.title) == (Status.DEGRADED, "Quests and accounts is degraded")
    assert (incident.opened_at, incident.resolved_at, incident.updated_at) == (DAY0, None, DAY0)
    assert [(e.kind, e.status, e.public, e.at) for e in incident.events] == [
        ("opened", Status.DEGRADED, True, DAY0)
    ]
    assert [i.id for i in await store.reader.incidents(state=IncidentState.OPEN)] == [incident_id]
    assert await store.reader.incidents(state=IncidentState.RESOLVED) == []
    assert await store.reader.incident(incident_id + 1000) is None


async def test_impact_escalates_to_the_worst_status_and_never_back(store: Store) -> None:
    writer = store.writer
    incident_id = await writer.open_incident("api", "s3", Status.DEGRADED, DAY0, "Photos")

    def change(at: float, status: Status) -> IncidentEvent:
        return IncidentEvent(at, "state_change", status, f"now {status}", public=True)

    await writer.add_event(incident_id, change(DAY0 + 10, Status.UNHEALTHY))
    after_escalation = await store.reader.incident(incident_id)
    await writer.add_event(incident_id, change(DAY0 + 20, Status.DEGRADED))
    after_improvement = await store.reader.incident(incident_id)

    assert after_escalation is not None
    assert after_improvement is not None
    assert after_escalation.impact == Status.UNHEALTHY
    assert after_improvement.impact == Status.UNHEALTHY
    assert after_improvement.updated_at == DAY0 + 20
    assert [(e.kind, e.status) for e in after_improvement.events] == [
        ("opened", Status.DEGRADED),
        ("state_change", Status.UNHEALTHY),
        ("state_change", Status.DEGRADED),
    ]


async def test_notes_keep_their_visibility_and_author(store: Store) -> None:
    writer = store.writer
    incident_id = await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "DB down")
    await writer.add_note(
        incident_id, "Failing over to the replica.", public=True, actor="alice", at=DAY0 + 60
    )
    await writer.add_note(
        incident_id,
        "Primary disk at 100 %, see ticket 42.",
        public=False,
        actor="bob",
        at=DAY0 + 90,
    )

    incident = await store.reader.incident(incident_id)

    assert incident is not None
    notes = [e for e in incident.events if e.kind == "note"]
    assert notes == [
        IncidentEvent(DAY0 + 60, "note", None, "Failing over to the replica.", True, "alice"),
        IncidentEvent(
            DAY0 + 90, "note", None, "Primary disk at 100 %, see ticket 42.", False, "bob"
        ),
    ]
    assert incident.impact == Status.UNHEALTHY  # a note has no status: impact unchanged
    assert incident.updated_at == DAY0 + 90


async def test_a_breaker_reset_lands_on_the_open_incident_of_that_service(store: Store) -> None:
    writer = store.writer
    other = await writer.open_incident("api", "s3", Status.UNHEALTHY, DAY0, "Photos down")
    incident_id = await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "DB down")

    landed = await writer.record_reset("api", "database", "alice", "open", DAY0 + 120)

    assert landed == incident_id
    incident = await store.reader.incident(incident_id)
    assert incident is not None
    reset = incident.events[-1]
    assert (reset.kind, reset.actor, reset.at, reset.public, reset.status) == (
        "breaker_reset",
        "alice",
        DAY0 + 120,
        False,
        None,
    )
    assert "alice" in reset.text
    assert "open" in reset.text
    untouched = await store.reader.incident(other)
    assert untouched is not None
    assert [e.kind for e in untouched.events] == ["opened"]


async def test_a_breaker_reset_without_an_open_incident_returns_none(store: Store) -> None:
    writer = store.writer
    resolved = await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "DB down")
    await writer.resolve_incident(resolved, DAY0 + 60, "Back.")

    assert await writer.record_reset("api", "database", "alice", "open", DAY0 + 120) is None
    assert await writer.record_reset("web", "database", "alice", "open", DAY0 + 120) is None

    incidents = await store.reader.incidents(with_events=True)
    assert [[e.kind for e in i.events] for i in incidents] == [["opened", "resolved"]]


async def test_resolving_closes_the_incident_with_a_public_event(store: Store) -> None:
    writer = store.writer
    incident_id = await writer.open_incident("api", TARGET_COMPONENT, Status.UNREACHABLE, DAY0, "x")

    await writer.resolve_incident(incident_id, DAY0 + 300, "QuestCity API is operating normally.")

    incident = await store.reader.incident(incident_id)
    assert incident is not None
    assert (incident.state, incident.resolved_at, incident.updated_at) == (
        IncidentState.RESOLVED,
        DAY0 + 300,
        DAY0 + 300,
    )
    assert incident.impact == Status.UNREACHABLE
    assert incident.events[-1] == IncidentEvent(
        DAY0 + 300,
        "resolved",
        Status.HEALTHY,
        "QuestCity API is operating normally.",
        True,
        None,
    )
    assert await store.reader.incidents(state=IncidentState.OPEN) == []
    assert [i.id for i in await store.reader.incidents(state=IncidentState.RESOLVED)] == [
        incident_id
    ]


async def test_incident_listing_newest_first_with_filters(store: Store) -> None:
    writer = store.writer
    first = await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "one")
    second = await writer.open_incident("api", "s3", Status.DEGRADED, DAY0 + DAY, "two")
    third = await writer.open_incident(
        "web", TARGET_COMPONENT, Status.UNHEALTHY, DAY0 + 2 * DAY, "3"
    )
    await writer.resolve_incident(first, DAY0 + 3 * DAY, "fixed")

    reader = store.reader
    assert [i.id for i in await reader.incidents()] == [third, second, first]
    assert [i.id for i in await reader.incidents(limit=2)] == [third, second]
    # ``since`` is about the last update: the first incident was resolved on day 3.
    assert [i.id for i in await reader.incidents(since=DAY0 + 1.5 * DAY)] == [third, first]
    plain = await reader.incidents()
    assert all(i.events == () for i in plain)
    with_events = {i.id: i for i in await reader.incidents(with_events=True)}
    assert [e.kind for e in with_events[first].events] == ["opened", "resolved"]
    assert [e.kind for e in with_events[second].events] == ["opened"]


async def test_incident_listing_and_open_adds_old_open_incidents(store: Store) -> None:
    writer = store.writer
    old_open = await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "old")
    newer = []
    for n in range(1, 4):
        incident = await writer.open_incident("web", f"s{n}", Status.DEGRADED, DAY0 + n * DAY, "")
        await writer.resolve_incident(incident, DAY0 + n * DAY + HOUR, "fixed")
        newer.append(incident)

    reader = store.reader
    listed = await reader.incidents(limit=2, and_open=True, with_events=True)

    assert [i.id for i in listed] == [newer[2], newer[1], old_open]
    assert [e.kind for e in listed[-1].events] == ["opened"]
    assert [i.id for i in await reader.incidents(limit=2)] == [newer[2], newer[1]]
    assert [i.id for i in await reader.incidents(limit=5, and_open=True)] == [
        *reversed(newer),
        old_open,
    ]


# -- alerts -------------------------------------------------------------------------------------


async def test_alerts_fire_resolve_and_filter_active(store: Store) -> None:
    writer = store.writer
    breaker = await writer.fire_alert("breaker_open", "api", "s3", "api/s3: breaker open", DAY0)
    unreachable = await writer.fire_alert(
        "target_unreachable", "web", TARGET_COMPONENT, "web: not answering", DAY0 + 60
    )

    firing = await store.reader.alerts()
    assert [(a.id, a.state, a.resolved_at) for a in firing] == [
        (unreachable, AlertState.FIRING, None),
        (breaker, AlertState.FIRING, None),
    ]
    assert (firing[1].rule, firing[1].target, firing[1].service, firing[1].summary) == (
        "breaker_open",
        "api",
        "s3",
        "api/s3: breaker open",
    )
    assert firing[1].started_at == DAY0

    await writer.resolve_alert(breaker, DAY0 + 600)

    assert [a.id for a in await store.reader.alerts()] == [unreachable]
    everything = await store.reader.alerts(active_only=False)
    assert [(a.id, a.state, a.resolved_at) for a in everything] == [
        (unreachable, AlertState.FIRING, None),
        (breaker, AlertState.RESOLVED, DAY0 + 600),
    ]
    assert len(await store.reader.alerts(active_only=False, limit=1)) == 1


# -- last_change --------------------------------------------------------------------------------


async def test_last_change_grows_while_other_tables_are_empty(store: Store) -> None:
    # No incident, no alert yet: the newest check alone must move it.
    before = await store.reader.last_change()

    await store.writer.record_check(check(DAY0))
    after_one = await store.reader.last_change()
    await store.writer.record_check(check(DAY0 + 10))

    assert before < after_one < await store.reader.last_change()


Write = Callable[[Store], Awaitable[object]]


async def _record(store: Store) -> None:
    await store.writer.record_check(check(DAY0 + 500, services=(sample("database"),)))


async def _open(store: Store) -> None:
    await store.writer.open_incident("api", "s3", Status.DEGRADED, DAY0 + 500, "Photos degraded")


async def _event(store: Store) -> None:
    await store.writer.add_event(
        1, IncidentEvent(DAY0 + 500, "state_change", Status.UNHEALTHY, "worse", True)
    )


async def _note(store: Store) -> None:
    await store.writer.add_note(1, "looking", public=False, actor="alice", at=DAY0 + 500)


async def _reset(store: Store) -> None:
    assert await store.writer.record_reset("api", "database", "alice", "open", DAY0 + 500)


async def _resolve_incident(store: Store) -> None:
    await store.writer.resolve_incident(1, DAY0 + 500, "fixed")


async def _fire(store: Store) -> None:
    await store.writer.fire_alert("breaker_open", "api", "s3", "open", DAY0 + 500)


async def _resolve_alert(store: Store) -> None:
    await store.writer.resolve_alert(1, DAY0 + 500)


async def _components(store: Store) -> None:
    await store.writer.sync_components([Component("api", "cache", "Cache", "Production", 9)])


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(_record, id="record_check"),
        pytest.param(_open, id="open_incident"),
        pytest.param(_event, id="add_event"),
        pytest.param(_note, id="add_note"),
        pytest.param(_reset, id="record_reset"),
        pytest.param(_resolve_incident, id="resolve_incident"),
        pytest.param(_fire, id="fire_alert"),
        pytest.param(
            _resolve_alert,
            id="resolve_alert",
        ),
        pytest.param(
            _components,
            id="sync_components",
        ),
    ],
)
async def test_last_change_grows_on_every_write(store: Store, write: Write) -> None:
    writer = store.writer
    await writer.record_check(check(DAY0, services=(sample("database"),)))
    await writer.open_incident("api", "database", Status.UNHEALTHY, DAY0, "DB down")  # id 1
    await writer.fire_alert("breaker_open", "api", "database", "open", DAY0)  # id 1
    await writer.sync_components([Component("api", TARGET_COMPONENT, "API", "Production", 0)])
    before = await store.reader.last_change()

    await write(store)

    assert await store.reader.last_change() > before


# -- retention ----------------------------------------------------------------------------------


async def _count(store: Store, table: str, **where: object) -> int:
    tables = {"checks": checks, "service_checks": service_checks, "rollups": rollups}
    chosen = tables[table]
    query = select(func.count()).select_from(chosen)
    for column, value in where.items():
        query = query.where(chosen.c[column] == value)
    async with store.engine.connect() as connection:
        return int(await connection.scalar(query) or 0)


async def test_retention_removes_only_rows_older_than_their_windows(store: Store) -> None:
    now = DAY0 + 100 * DAY + 12 * HOUR
    ages_in_days = [90.0, 40.0, 20.0, 8.0, 6.0, 1.0, 0.01]
    for age in ages_in_days:
        await store.writer.record_check(
            check(now - age * DAY, latency_ms=age, services=(sample("database", response_ms=age),))
        )
    hours_before = await store.reader.bars("api", period="hour", count=24 * 35, now=now)
    days_before = await store.reader.bars("api", period="day", count=60, now=now)

    removed = await store.writer.apply_retention(now, raw_days=7, hourly_days=30, daily_days=60)

    # raw: 7 days; hourly roll-ups: 30 days; daily roll-ups: 60 days.
    assert removed == {
        "checks": 4,
        "replica_checks": 0,
        "replicas": 0,
        "silences": 0,
        "hour_rollups": 2 * 2,
        "day_rollups": 1 * 2,
        # (#15's public side: nothing here; test_public_store fills it)
        "deliveries": 0,
        "public_messages": 0,
        "subscribers": 0,
        "maintenances": 0,
    }
    assert await store.reader.recent_latencies("api") == [6.0, 1.0, 0.01]
    assert await store.reader.recent_latencies("api", "database") == [6.0, 1.0, 0.01]
    assert await _count(store, "service_checks") == 3
    assert await _count(store, "rollups", period="hour") == 5 * 2
    assert await _count(store, "rollups", period="day") == 6 * 2
    # What is kept reads as before.
    assert await store.reader.bars("api", period="hour", count=24 * 35, now=now) == [
        bar if bar.start >= now - 30 * DAY else UptimeBar(bar.start, 0, 0, Status.UNKNOWN, None)
        for bar in hours_before
    ]
    assert await store.reader.bars("api", period="day", count=60, now=now) == days_before
    latest = await store.reader.latest("api")
    assert latest is not None
    assert latest.record.at == now - 0.01 * DAY


async def test_retention_on_an_empty_store_removes_nothing(store: Store) -> None:
    removed = await store.writer.apply_retention(DAY0, raw_days=7, hourly_days=35, daily_days=400)

    assert removed == {
        "checks": 0,
        "replica_checks": 0,
        "replicas": 0,
        "silences": 0,
        "hour_rollups": 0,
        "day_rollups": 0,
        # (#15's public side: nothing here; test_public_store fills it)
        "deliveries": 0,
        "public_messages": 0,
        "subscribers": 0,
        "maintenances": 0,
    }


# -- scale --------------------------------------------------------------------------------------


async def test_check_ids_go_past_32_bits(store: Store, request: pytest.FixtureRequest) -> None:
    # As if 2**31 - 1 checks had been written already.
    async with store.engine.begin() as connection:
        await connection.execute(
            insert(checks).values(
                id=2**31 - 1, target="api", at=DAY0, status="healthy", latency_ms=1.0
            )
        )
        if store.backend == "postgresql":
            await connection.execute(
                text("SELECT setval(pg_get_serial_sequence('checks', 'id'), 2147483647)")
            )

    await store.writer.record_check(check(DAY0 + 10, services=(sample("database"),)))

    latest = await store.reader.latest("api")
    assert latest is not None
    assert latest.record.at == DAY0 + 10
