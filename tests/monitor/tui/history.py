"""Fixed history for the TUI tests: two targets, 30 days of checks, an outage in progress.

Every timestamp is relative to :data:`NOW` (the frozen clock's wall time), so screenshots are the
same on every run and every machine.

- ``questcity-api`` (QuestCity API, admin token configured): its database has been unhealthy for
  the last 8 checks with the breaker OPEN for the last 5; an open incident and a firing alert.
- ``questcity-eu`` (QuestCity EU, no admin token configured): image storage degraded for the last
  4 checks with its breaker half-open; an old resolved incident.
- The leadership lease: ``monitor-a`` has led for three hours and renewed 2 s before NOW.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import MonitorConfig, parse_config
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    Component,
    IncidentEvent,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.leases import LeaseStore
from monitor.store.writer import HistoryWriter

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
LEADER = "monitor-a"
LEASE_TTL = 7.5
HOUR = 3600.0
DAY = 86400.0
ADMIN_ENV = "QC_TEST_ADMIN_TOKEN"
ADMIN_TOKEN = "admin-secret"

CONFIG_TOML = """
[storage]
url = "{url}"

[[targets]]
name = "questcity-api"
display_name = "QuestCity API"
url = "http://api.questcity.test"
interval = 10
timeout = 5
token_env = "QC_TEST_OPERATOR_TOKEN"
admin_token_env = "QC_TEST_ADMIN_TOKEN"
services = {{ database = "Database", s3 = "Image storage" }}

[[targets]]
name = "questcity-eu"
display_name = "QuestCity EU"
url = "http://eu.questcity.test"
interval = 10
timeout = 5
services = {{ database = "Database", s3 = "Image storage" }}
"""


def make_config(store_path: Path) -> MonitorConfig:
    return parse_config(
        CONFIG_TOML.format(url=f"sqlite:///{store_path}"), store_path.parent / "monitor.toml"
    )


def _breaker(name: str, state: str, failures: int, calls: int) -> dict[str, object]:
    return {
        "name": name,
        "state": state,
        "forced_open": False,
        "total_calls": calls,
        "successful_calls": calls - failures,
        "failed_calls": failures,
        "timed_out_calls": 0,
        "rejected_calls": 3 if state == "open" else 0,
        "consecutive_failures": failures if state != "closed" else 0,
        "state_transitions": 2 if state != "closed" else 0,
        "last_transition_at": NOW - 50 if state != "closed" else None,
    }


def _sample(
    service: str, status: Status, response: float | None, failures: int, breaker: str
) -> ServiceSample:
    details: dict[str, object] = {
        "circuit_breaker": _breaker(service, breaker, failures, 1200),
        "availability_percent": 99.2 if status is Status.HEALTHY else 96.4,
        "critical": service == "database",
    }
    if service == "database":
        details["details"] = {
            "size": 20,
            "checked_out": 20 if status is Status.UNHEALTHY else 3,
            "overflow": 30 if status is Status.UNHEALTHY else 0,
            "max_overflow": 30,
            "waiting": 12 if status is Status.UNHEALTHY else 0,
            "exhausted_total": 4,
        }
    if status is not Status.HEALTHY:
        details["last_error"] = "timeout" if service == "database" else "connection refused"
    return ServiceSample(service, status, response, failures, breaker, details)


def _check(target: str, at: float, services: tuple[ServiceSample, ...]) -> CheckRecord:
    worst = max((s.status for s in services), key=lambda s: s.severity)
    overall = Status.DEGRADED if worst is not Status.HEALTHY else Status.HEALTHY
    if any(s.status is Status.UNHEALTHY and s.service == "database" for s in services):
        overall = Status.UNHEALTHY
    latency = 12.0 + (at % 7)
    return CheckRecord(
        target, at, overall, latency, 503 if overall is Status.UNHEALTHY else 200, None, services
    )


async def build_history(url: str) -> None:
    engine = open_engine(url)
    try:
        await create_schema(engine)
        writer = HistoryWriter(engine)
        await writer.sync_components(
            [
                Component(target, service, title, "Services", position)
                for position, (target, service, title) in enumerate(
                    [
                        ("questcity-api", TARGET_COMPONENT, "QuestCity API"),
                        ("questcity-api", "database", "Database"),
                        ("questcity-api", "s3", "Image storage"),
                        ("questcity-eu", TARGET_COMPONENT, "QuestCity EU"),
                        ("questcity-eu", "database", "Database"),
                        ("questcity-eu", "s3", "Image storage"),
                    ]
                )
            ]
        )
        await _long_history(writer)
        await _recent(writer)
        await _incidents_and_alerts(writer)
        await lead(engine, LEADER, since=NOW - 3 * HOUR, renewed=NOW - 2)
    finally:
        await engine.dispose()


async def lead(engine: AsyncEngine, holder: str, *, since: float, renewed: float) -> None:
    """``holder`` takes the lease at ``since`` (from whoever held it) and renews it at
    ``renewed``."""
    leases = LeaseStore(engine)
    lease = await leases.acquire(holder, ttl=LEASE_TTL, now=since, expected=await leases.read())
    assert lease is not None
    assert await leases.renew(lease, now=renewed) is not None


async def _long_history(writer: HistoryWriter) -> None:
    """A check every two hours for 30 days, with a few bad ones."""
    start = NOW - 30 * DAY
    for n in range(int(30 * DAY / (2 * HOUR)) - 1):
        at = start + n * 2 * HOUR
        db_down = n in (300, 301, 302)  # five days ago, six hours
        s3_slow = n in (100, 101)  # twenty days ago, on the EU target
        await writer.record_check(
            _check(
                "questcity-api",
                at,
                (
                    _sample(
                        "database",
                        Status.UNHEALTHY if db_down else Status.HEALTHY,
                        None if db_down else 4.0 + n % 5,
                        6 if db_down else 0,
                        "open" if db_down else "closed",
                    ),
                    _sample("s3", Status.HEALTHY, 20.0 + n % 9, 0, "closed"),
                ),
            )
        )
        await writer.record_check(
            _check(
                "questcity-eu",
                at,
                (
                    _sample("database", Status.HEALTHY, 5.0 + n % 4, 0, "closed"),
                    _sample(
                        "s3",
                        Status.DEGRADED if s3_slow else Status.HEALTHY,
                        250.0 if s3_slow else 30.0 + n % 6,
                        2 if s3_slow else 0,
                        "half_open" if s3_slow else "closed",
                    ),
                ),
            )
        )


RECENT = 20
DB_LATENCIES = [
    4.1,
    4.3,
    3.9,
    4.8,
    5.2,
    4.4,
    4.0,
    6.1,
    7.5,
    9.8,
    14.2,
    22.0,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
]
S3_LATENCIES = [
    21.0,
    23.5,
    19.8,
    25.1,
    22.2,
    30.4,
    27.7,
    21.9,
    20.5,
    24.8,
    26.3,
    22.8,
    21.1,
    28.9,
    23.3,
    22.0,
    20.7,
    24.1,
    25.5,
    21.6,
]


async def _recent(writer: HistoryWriter) -> None:
    """The last 20 checks, 10 s apart, the last one 5 s before NOW."""
    for n in range(RECENT):
        at = NOW - 5 - (RECENT - 1 - n) * 10
        db_failures = max(0, n - 11)
        db_status = Status.UNHEALTHY if db_failures else Status.HEALTHY
        db_breaker = "open" if db_failures >= 4 else "closed"
        await writer.record_check(
            _check(
                "questcity-api",
                at,
                (
                    _sample("database", db_status, DB_LATENCIES[n], db_failures, db_breaker),
                    _sample("s3", Status.HEALTHY, S3_LATENCIES[n], 0, "closed"),
                ),
            )
        )
        eu_bad = n >= RECENT - 4
        await writer.record_check(
            _check(
                "questcity-eu",
                at,
                (
                    _sample("database", Status.HEALTHY, 5.0 + n % 3, 0, "closed"),
                    _sample(
                        "s3",
                        Status.DEGRADED if eu_bad else Status.HEALTHY,
                        180.0 + n if eu_bad else 31.0 + n % 5,
                        n - 15 if eu_bad else 0,
                        "half_open" if eu_bad else "closed",
                    ),
                ),
            )
        )


async def _incidents_and_alerts(writer: HistoryWriter) -> None:
    old = NOW - 20 * DAY + 200 * HOUR
    eu = await writer.open_incident(
        "questcity-eu", "s3", Status.DEGRADED, old, "Image storage is degraded"
    )
    await writer.add_note(
        eu,
        "S3 endpoint slow after a storage node restart.",
        public=True,
        actor="alice",
        at=old + 600,
    )
    await writer.resolve_incident(eu, old + 4 * HOUR, "Image storage is working normally again.")
    opened = NOW - 5 - 7 * 10  # the second unhealthy check
    incident = await writer.open_incident(
        "questcity-api", "database", Status.UNHEALTHY, opened, "Database is unhealthy"
    )
    await writer.add_event(
        incident,
        IncidentEvent(
            at=opened + 20,
            kind="state_change",
            status=Status.UNHEALTHY,
            public=False,
            text="Database circuit breaker opened after 4 failures.",
        ),
    )
    old_alert = await writer.fire_alert(
        "s3_failure_rate", "questcity-eu", "s3", "S3 failure rate 45% over 5 min", old + 300
    )
    await writer.resolve_alert(old_alert, old + 3 * HOUR)
    await writer.fire_alert(
        "breaker_open",
        "questcity-api",
        "database",
        "database breaker open for more than 5 min",
        NOW - 40,
    )
    await writer.fire_alert(
        "pool_exhausted",
        "questcity-api",
        "database",
        "database connection pool exhausted (12 waiting)",
        NOW - 25,
    )
