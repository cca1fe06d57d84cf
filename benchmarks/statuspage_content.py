"""What people write on the status page (issue #15), added to the render benchmark's store: 5
written incidents with 10 public updates each (2 still open, 3 resolved, one of them with a
postmortem) and 2 maintenance windows (one active and marked started, one upcoming), through the
store's own writes (``open_written_incident``, ``update_incident``, ``write_postmortem``,
``schedule_maintenance``, ``mark_maintenance``), as ``questcity incident|maintenance`` leave them.

Imported only when the benchmark is asked for this content: the code before #15 has none of it.
"""

from __future__ import annotations

from monitor.store import IncidentComponent, Status, open_engine
from monitor.store.writer import HistoryWriter

DAY = 86_400
HOUR = 3_600
WRITTEN = 5
UPDATES = 10
PHASES_OPEN = ("investigating",) * 3 + ("identified",) * 3 + ("monitoring",) * 3
PHASES_RESOLVED = ("investigating",) * 2 + ("identified",) * 3 + ("monitoring",) * 3 + ("resolved",)
# People's text: a realistic length (a status update is a few sentences), both alphabets.
MESSAGE = (
    "Players in region {t} cannot start new quests: the quest service times out reading "
    "the database. We are moving the load to the replica; quests already started go on. "
    "Игроки региона {t} не могут начать новые квесты; уже начатые продолжаются. (update {u})"
)
POSTMORTEM = (
    "What happened: a schema migration locked the quests table for 14 minutes.\n\n"
    "What we changed: migrations now run with a lock timeout and in batches.\n\n" * 4
)


def _components(k: int) -> list[IncidentComponent]:
    """Incident ``k``'s components (1 to 3, in targets the automatic incidents do not use)."""
    target = f"api-{4 + k}"
    found = [IncidentComponent(target, "database", Status.UNHEALTHY)]  # major
    if k % 2 == 0:
        found.append(IncidentComponent(target, "", Status.DEGRADED))  # minor
    if k == 1:
        found.append(IncidentComponent(target, "search", Status.UNREACHABLE))  # critical
    return found


async def add_public_content(url: str, now: float) -> dict[str, int]:
    """Writes the incidents and the windows; the ids the benchmark requests."""
    engine = open_engine(url)
    writer = HistoryWriter(engine)
    ids: list[int] = []
    for k in range(WRITTEN):
        resolved = k >= 2
        opened = now - (2 * HOUR if k == 0 else 20 * HOUR if k == 1 else (2 + 3 * k) * DAY)
        step = 10 * 60 if k == 0 else 45 * 60
        components = _components(k)
        target = components[0].target
        incident = await writer.open_written_incident(
            f"Quests do not start in region {target[4:]}",
            components,
            MESSAGE.format(t=target, u=1),
            "operator",
            opened,
        )
        for u, phase in enumerate(PHASES_RESOLVED if resolved else PHASES_OPEN, start=2):
            await writer.update_incident(
                incident, phase, MESSAGE.format(t=target, u=u), "operator", opened + u * step
            )
        if k == 2:
            await writer.write_postmortem(incident, POSTMORTEM, "operator", opened + DAY)
        ids.append(incident)
    active = await writer.schedule_maintenance(
        "Database upgrade in region 9",
        ["api-9"],
        now - HOUR,
        now + 3 * HOUR,
        "Quests in region 9 may pause for a few minutes while the database restarts.",
        "operator",
        now - 3 * DAY,
    )
    await writer.mark_maintenance(active, "started", now - HOUR + 5)
    await writer.schedule_maintenance(
        "Search index rebuild",
        ["api-1/search", "api-2/search", "api-3/search"],
        now + 2 * DAY,
        now + 2 * DAY + 4 * HOUR,
        "Searching for quests may be slow during the rebuild.",
        "operator",
        now - DAY,
    )
    await engine.dispose()
    return {"written_open": ids[0], "written_resolved": ids[2]}
