"""Fixed histories for the status page's tests, written through the monitor's ``HistoryWriter``.

Every scenario is relative to :data:`NOW` (the frozen clock the app is given): 90 days with a few
checked days, a bad day a month ago, a check every two hours over the last day, and then the
state the scenario is about, checked 30 s before :data:`NOW`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from monitor.store import (
    CheckRecord,
    Component,
    IncidentEvent,
    ServiceSample,
    Status,
)
from monitor.store.writer import HistoryWriter

NOW = 1_747_224_000.0  # 2025-05-14 12:00:00 UTC
DAY = 86_400.0
HOUR = 3_600.0

API = "questcity-api"
EU = "questcity-eu"
CATALOGUE = (
    Component(API, "", "QuestCity API", "QuestCity", 0),
    Component(API, "database", "Quests and accounts", "QuestCity", 1),
    Component(API, "s3", "Images", "QuestCity", 2),
    Component(EU, "", "QuestCity API (Europe)", "Regions", 3),
)
HEALTHY_SERVICES = {"database": (Status.HEALTHY, 3.0), "s3": (Status.HEALTHY, 12.0)}

Scenario = Callable[[HistoryWriter], Awaitable[None]]


async def check(
    writer: HistoryWriter,
    target: str,
    at: float,
    status: Status,
    latency: float | None = 42.0,
    services: Mapping[str, tuple[Status, float | None]] | None = None,
    *,
    error: str | None = None,
) -> None:
    samples = tuple(
        ServiceSample(name, s, ms, consecutive_failures=0, breaker_state="closed")
        for name, (s, ms) in (services or {}).items()
    )
    await writer.record_check(
        CheckRecord(target, at, status, latency, 200 if latency else None, error, samples)
    )


async def history(writer: HistoryWriter) -> None:
    """The past both targets share: 90 days back to an hour ago."""
    await writer.sync_components(CATALOGUE)
    today = NOW // DAY * DAY
    bad_day = today - 31 * DAY + 13 * HOUR
    for days_ago in (89, 60, 31, 14, 6, 2, 1):
        at = today - days_ago * DAY + 12 * HOUR
        await check(writer, API, at, Status.HEALTHY, 40.0, HEALTHY_SERVICES)
        await check(writer, EU, at, Status.HEALTHY, 95.0)
        if days_ago == 31:  # checks are written in time order, as the daemon writes them
            await check(
                writer,
                API,
                bad_day,
                Status.DEGRADED,
                300.0,
                {"database": (Status.HEALTHY, 4.0), "s3": (Status.UNHEALTHY, None)},
            )
    incident = await writer.open_incident(API, "s3", Status.UNHEALTHY, bad_day, "Images is down")
    await writer.resolve_incident(incident, bad_day + 40 * 60, "Images is operating normally.")
    for hours_ago in range(22, 0, -2):
        at = NOW - hours_ago * HOUR
        await check(writer, API, at, Status.HEALTHY, 40.0 + (hours_ago % 5) * 6, HEALTHY_SERVICES)
        await check(writer, EU, at, Status.HEALTHY, 90.0 + (hours_ago % 3) * 10)


async def all_operational(writer: HistoryWriter) -> None:
    await history(writer)
    recovered = NOW - 3 * DAY
    incident = await writer.open_incident(EU, "", Status.DEGRADED, recovered, "Europe is slow")
    await writer.resolve_incident(incident, recovered + 25 * 60, "Europe is operating normally.")
    await check(writer, API, NOW - 30, Status.HEALTHY, 38.0, HEALTHY_SERVICES)
    await check(writer, EU, NOW - 30, Status.HEALTHY, 88.0)


async def partial_outage(writer: HistoryWriter) -> None:
    """Images (S3) down for 20 minutes; the API degraded because of it; Europe fine."""
    await history(writer)
    broken = {"database": (Status.HEALTHY, 3.0), "s3": (Status.UNHEALTHY, None)}
    for at in (NOW - 20 * 60, NOW - 10 * 60, NOW - 30):
        await check(writer, API, at, Status.DEGRADED, 55.0, broken)
    incident = await writer.open_incident(API, "s3", Status.UNHEALTHY, NOW - 10 * 60, "Images")
    await writer.add_note(
        incident,
        "Uploads of covers and avatars fail; quests work.",
        public=True,
        actor="ops",
        at=NOW - 5 * 60,
    )
    await check(writer, EU, NOW - 30, Status.HEALTHY, 88.0)


async def major_outage(writer: HistoryWriter) -> None:
    """The API does not answer at all (so nothing behind it is reachable)."""
    await history(writer)
    for at in (NOW - 10 * 60, NOW - 5 * 60, NOW - 30):
        await check(writer, API, at, Status.UNREACHABLE, None, error="timeout")
    await writer.open_incident(API, "", Status.UNREACHABLE, NOW - 5 * 60, "QuestCity API")
    await check(writer, EU, NOW - 30, Status.HEALTHY, 88.0)


async def open_incident(writer: HistoryWriter) -> None:
    """The database was down and is now degraded; the incident has public and private notes."""
    await history(writer)
    down = {"database": (Status.UNHEALTHY, None), "s3": (Status.HEALTHY, 12.0)}
    slow = {"database": (Status.DEGRADED, 900.0), "s3": (Status.HEALTHY, 12.0)}
    await check(writer, API, NOW - 40 * 60, Status.UNHEALTHY, 60.0, down)
    incident = await writer.open_incident(
        API, "database", Status.UNHEALTHY, NOW - 40 * 60, "Quests and accounts is down"
    )
    await writer.add_note(
        incident,
        "We found a failing disk and are moving to a replica.\nSaving quests may fail meanwhile.",
        public=True,
        actor="ops",
        at=NOW - 30 * 60,
    )
    await writer.add_note(
        incident, "primary on db-7 is wedged", public=False, actor="ops", at=NOW - 29 * 60
    )
    await writer.record_reset(API, "database", "ops", "open", NOW - 25 * 60)
    await check(writer, API, NOW - 20 * 60, Status.DEGRADED, 70.0, slow)
    await writer.add_event(
        incident,
        IncidentEvent(
            at=NOW - 20 * 60,
            kind="state_change",
            status=Status.DEGRADED,
            text="Quests and accounts is now degraded.",
            public=True,
        ),
    )
    await check(writer, API, NOW - 30, Status.DEGRADED, 65.0, slow)
    await check(writer, EU, NOW - 30, Status.HEALTHY, 88.0)


async def empty(writer: HistoryWriter) -> None:
    """A fresh install: the schema exists, nothing is in it."""


SCENARIOS: dict[str, Scenario] = {
    "all_operational": all_operational,
    "partial_outage": partial_outage,
    "major_outage": major_outage,
    "open_incident": open_incident,
    "empty": empty,
}


# -- hostile text and leaky stores -------------------------------------------------------------

HOSTILE_NAME = '<script>alert("pwned")</script> It\'s "quoted" & <b>bold</b>'
LONG_NAME = "Very" + "long" * 80
HOSTILE_GROUP = "<i>Group</i> \"one\" & 'two'"
HOSTILE_NOTE = "<img src=x onerror=alert(1)> \"notes\" & 'quotes'\x00\x1b[31m\nsecond line"
UNICODE_NAME = "Ωμέγα 日本語 😀"


async def hostile(writer: HistoryWriter) -> None:
    """Display names, group names and a public note written by someone who means harm."""
    await writer.sync_components(
        (
            Component(API, "", HOSTILE_NAME, HOSTILE_GROUP, 0),
            Component(API, "s3", LONG_NAME, HOSTILE_GROUP, 1),
            Component(EU, "", UNICODE_NAME, "", 2),
        )
    )
    broken = {"s3": (Status.UNHEALTHY, None)}
    for at in (NOW - 2 * DAY, NOW - 2 * HOUR, NOW - HOUR, NOW - 30):  # two hours: a line
        await check(writer, API, at, Status.DEGRADED, 50.0, broken)
        await check(writer, EU, at, Status.HEALTHY, 70.0)
    incident = await writer.open_incident(API, "s3", Status.UNHEALTHY, NOW - HOUR, HOSTILE_NAME)
    await writer.add_note(incident, HOSTILE_NOTE, public=True, actor="<b>ops</b>", at=NOW - 60)


SECRETS = (
    "db-primary.internal.example",
    "10.0.3.7",
    "s3.eu-central.internal",
    "eyJhbGciOiJSUzI1NiJ9",
    "alice@ops",
    "pg-main-7",
    "pool_exhausted",
    "connection refused",
)
"""Strings that are in the leaky store and must never reach any output."""


async def leaky(writer: HistoryWriter) -> None:
    """Everything internal the store may hold, next to the public text it also holds."""
    await writer.sync_components(
        (
            Component(API, "", "QuestCity API", "QuestCity", 0),
            Component(API, "pg-main-7", "Quests and accounts", "QuestCity", 1),
        )
    )
    error = "connection refused by db-primary.internal.example:5432"
    details: dict[str, object] = {
        "pool": {"size": 20, "checked_out": 20, "host": "10.0.3.7"},
        "breaker": {"failures": 3, "state": "open"},
        "last_error": "s3.eu-central.internal timed out",
    }
    await writer.record_check(
        CheckRecord(
            API,
            NOW - 120,
            Status.UNHEALTHY,
            80.0,
            503,
            error,
            (ServiceSample("pg-main-7", Status.UNHEALTHY, None, 5, "open", details),),
        )
    )
    incident = await writer.open_incident(
        API, "pg-main-7", Status.UNHEALTHY, NOW - 120, f"pg-main-7 down: {error}"
    )
    await writer.add_event(
        incident,
        IncidentEvent(NOW - 100, "state_change", Status.UNHEALTHY, f"10.0.3.7: {error}", True),
    )
    await writer.add_note(
        incident,
        "token eyJhbGciOiJSUzI1NiJ9.x leaked",
        public=False,
        actor="alice@ops",
        at=NOW - 90,
    )
    await writer.record_reset(API, "pg-main-7", "alice@ops", "open", NOW - 80)
    await writer.add_event(  # a reset wrongly marked public: still not shown
        incident,
        IncidentEvent(NOW - 70, "breaker_reset", None, "reset by alice@ops (pool_exhausted)", True),
    )
    await writer.fire_alert(
        "pool_exhausted", API, "pg-main-7", f"pool_exhausted: {error}", NOW - 60
    )
    await writer.record_check(
        CheckRecord(
            API,
            NOW - 30,
            Status.HEALTHY,
            40.0,
            200,
            None,
            (ServiceSample("pg-main-7", Status.HEALTHY, 3.0, 0, "closed", details),),
        )
    )
    await writer.resolve_incident(incident, NOW - 30, f"recovered; {error} no more")
