"""A store where people talk to the public (issue #15), written through ``HistoryWriter`` on the
frozen clock of :mod:`tests.statuspage.scenarios`: everything healthy by the checks, and

- an open **written** incident on the database (declared ``major``) with three updates;
- a **resolved written** incident from three days ago that lasted 1 h 5 min, with a postmortem;
- an **automatic** incident on Images, public machine updates, then **taken over** by a person;
- an **automatic** incident on Europe, nobody wrote into it;
- maintenance windows: one **active** on Europe, one **upcoming** on the database, one
  **cancelled** before it started, one **completed** five days ago.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.store import IncidentComponent, IncidentEvent, Status
from monitor.store.writer import HistoryWriter
from tests.statuspage.scenarios import API, DAY, EU, HEALTHY_SERVICES, HOUR, NOW, check, history

TITLE = "Saving quests is slow"
OPENING = "Saving a quest takes up to a minute; we are looking into it."
IDENTIFIED = "A database migration holds a lock on the quests table."
MONITORING = "The migration was paused; saves are fast again. We are watching."
PAST_TITLE = "Logins failed for some players"
POSTMORTEM = "A certificate expired at 09:00. We now renew certificates a month ahead."
TAKEOVER = "Our storage provider confirmed the outage; covers may not load."
UPCOMING = "Database upgrade"
UPCOMING_MESSAGE = "We upgrade PostgreSQL; saving quests pauses for a few minutes."
ACTIVE = "Moving Europe to a new data centre"
CANCELLED = "Cache flush"
COMPLETED = "Kernel updates"


@dataclass
class Ids:
    written: int
    past: int
    taken_over: int
    automatic: int
    upcoming: int
    active: int
    cancelled: int
    completed: int


async def public(writer: HistoryWriter) -> Ids:
    await history(writer)
    await check(writer, API, NOW - 30, Status.HEALTHY, 38.0, HEALTHY_SERVICES)
    await check(writer, EU, NOW - 30, Status.HEALTHY, 88.0)
    database = IncidentComponent(API, "database", Status.UNHEALTHY)  # declared "major"
    written = await writer.open_written_incident(TITLE, [database], OPENING, "ops", NOW - 50 * 60)
    await writer.update_incident(written, "identified", IDENTIFIED, "ops", NOW - 40 * 60)
    await writer.update_incident(written, "monitoring", MONITORING, "ops", NOW - 20 * 60)

    past_at = NOW - 3 * DAY
    login = IncidentComponent(API, "", Status.UNREACHABLE)  # declared "critical"
    past = await writer.open_written_incident(PAST_TITLE, [login], "Logins fail.", "ops", past_at)
    await writer.update_incident(past, "resolved", "Logins work again.", "ops", past_at + 65 * 60)
    await writer.write_postmortem(past, POSTMORTEM, "ops", past_at + DAY)

    taken = await writer.open_incident(API, "s3", Status.UNHEALTHY, NOW - 2 * HOUR, "s3 down")
    await writer.update_incident(taken, "identified", TAKEOVER, "ops", NOW - 90 * 60)
    # the machine's later change stays internal once a person writes the incident
    await writer.add_event(
        taken, IncidentEvent(NOW - 60 * 60, "state_change", Status.HEALTHY, "s3 back", False)
    )

    automatic = await writer.open_incident(EU, "", Status.DEGRADED, NOW - 15 * 60, "eu slow")

    upcoming = await writer.schedule_maintenance(
        UPCOMING, [f"{API}/database"], NOW + DAY, NOW + DAY + 2 * HOUR, UPCOMING_MESSAGE, "ops",
        NOW - HOUR,
    )  # fmt: skip
    active = await writer.schedule_maintenance(
        ACTIVE, [EU], NOW - 30 * 60, NOW + 30 * 60, None, "ops", NOW - 2 * DAY
    )
    await writer.mark_maintenance(active, "started", NOW - 29 * 60)
    cancelled = await writer.schedule_maintenance(
        CANCELLED, [API], NOW + 2 * DAY, NOW + 2 * DAY + HOUR, None, "ops", NOW - DAY
    )
    await writer.cancel_maintenance(cancelled, "ops", NOW - 10 * 60)
    done_at = NOW - 5 * DAY
    completed = await writer.schedule_maintenance(
        COMPLETED, [API], done_at, done_at + HOUR, "Rolling reboots.", "ops", done_at - DAY
    )
    await writer.mark_maintenance(completed, "started", done_at + 5)
    await writer.mark_maintenance(completed, "completed", done_at + HOUR + 5)
    return Ids(written, past, taken, automatic, upcoming, active, cancelled, completed)
