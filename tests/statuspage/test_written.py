"""Incidents people write (issue #15) on the page and in Statuspage's JSON: titles and updates as
written, the phase as the status, a postmortem, a takeover of an automatic incident, durations,
and the components a person declared down shown down however well their checks go."""

from __future__ import annotations

from typing import Any

from monitor.store import IncidentComponent, Status
from tests.statuspage import public_scenario as scenario
from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import API, NOW


def by_id(incidents: list[dict[str, Any]], number: int) -> dict[str, Any]:
    return next(i for i in incidents if i["id"] == str(number))


async def test_written_incident_in_the_json(store: Store, client: Client) -> None:
    ids = await scenario.public(store.writer)
    async with client() as http:
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        unresolved = (await http.get("/api/v2/incidents/unresolved.json")).json()["incidents"]
    written = by_id(incidents, ids.written)
    assert written["name"] == scenario.TITLE  # as written, not worded by the machine
    assert written["status"] == "monitoring"  # the phase the person set last
    assert written["impact"] == "major"  # declared major: a partial outage of the database
    assert written["monitoring_at"] == "2025-05-14T11:40:00.000Z"
    assert written["resolved_at"] is None
    updates = written["incident_updates"]
    assert [(u["status"], u["body"]) for u in updates] == [
        ("monitoring", scenario.MONITORING),
        ("identified", scenario.IDENTIFIED),
        ("investigating", scenario.OPENING),
    ]
    assert [c["name"] for c in written["components"]] == ["Quests and accounts"]
    assert written["components"][0]["status"] == "partial_outage"
    # unresolved: open ones only (Statuspage: investigating, identified or monitoring)
    assert {i["id"] for i in unresolved} == {
        str(ids.written),
        str(ids.taken_over),
        str(ids.automatic),
    }
    assert all(i["status"] in ("investigating", "identified", "monitoring") for i in unresolved)


async def test_postmortem_and_duration(store: Store, client: Client) -> None:
    ids = await scenario.public(store.writer)
    async with client() as http:
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        page = (await http.get(f"/incidents/{ids.past}")).text
        index = (await http.get("/")).text
        russian = (await http.get(f"/incidents/{ids.past}?lang=ru")).text
    past = by_id(incidents, ids.past)
    assert past["status"] == "postmortem"  # resolved, and its postmortem is out
    assert past["resolved_at"] == "2025-05-11T13:05:00.000Z"
    assert [u["status"] for u in past["incident_updates"]] == [
        "postmortem",
        "resolved",
        "investigating",
    ]
    assert past["incident_updates"][0]["body"] == scenario.POSTMORTEM
    assert "Postmortem</h2>" in page and scenario.POSTMORTEM in page
    assert page.count(scenario.POSTMORTEM) == 1  # its own section, not again in the timeline
    assert "Lasted 1 h 5 min" in page
    assert "1 ч 5 мин" in russian  # the duration in the reader's language
    assert scenario.PAST_TITLE in index and "Lasted 1 h 5 min" in index
    assert "ongoing for 50 min" in index  # the open written incident


async def test_taken_over_incident(store: Store, client: Client) -> None:
    """The machine's public updates until the takeover, then the person's; the machine's later
    change (Images recovered by the checks) is not published. Taking it over declared no impact:
    Images shows what its checks say, not the worst they saw (the written incident's database
    stays at the impact its person declared)."""
    ids = await scenario.public(store.writer)
    async with client() as http:
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        components = (await http.get("/api/v2/components.json")).json()["components"]
    taken = by_id(incidents, ids.taken_over)
    assert taken["name"] == "Partial outage: Images"  # the machine's wording stays its name
    assert taken["status"] == "identified"
    statuses = [u["status"] for u in taken["incident_updates"]]
    assert statuses == ["identified", "investigating"]
    assert taken["incident_updates"][0]["body"] == scenario.TAKEOVER
    assert taken["incident_updates"][1]["body"].startswith("We are investigating a problem")
    automatic = by_id(incidents, ids.automatic)
    assert automatic["name"] == "Degraded performance: QuestCity API (Europe)"
    status = {c["name"]: c["status"] for c in components}
    # the checks say healthy; the person who wrote the database's incident says otherwise
    assert status["Quests and accounts"] == "partial_outage"
    assert status["Images"] == "operational"  # taken over, still open: measured, not pinned
    assert status["QuestCity API"] == "operational"  # the resolved incident raises nothing


async def test_taken_over_incident_holds_what_its_person_declared(
    store: Store, client: Client
) -> None:
    """An update that replaces a taken-over incident's components declares their impact: from
    then on they read at least that, however well their checks go."""
    ids = await scenario.public(store.writer)
    images = IncidentComponent(API, "s3", Status.UNREACHABLE)  # declared "critical"
    await store.writer.update_incident(
        ids.taken_over, "monitoring", "Covers still fail.", "ops", NOW - 5 * 60, [images]
    )
    async with client() as http:
        components = (await http.get("/api/v2/components.json")).json()["components"]
    assert {c["name"]: c["status"] for c in components}["Images"] == "major_outage"


async def test_declared_impact_leaves_with_the_incident(store: Store, client: Client) -> None:
    """Resolved, a written incident no longer holds its components down; nothing else does
    (Images' taken-over incident declared no impact, Europe is under maintenance)."""
    ids = await scenario.public(store.writer)
    await store.writer.update_incident(ids.written, "resolved", "Fixed.", "ops", NOW - 60)
    async with client() as http:
        components = (await http.get("/api/v2/components.json")).json()["components"]
        status = (await http.get("/api/v2/status.json")).json()["status"]
    assert {c["name"]: c["status"] for c in components}["Quests and accounts"] == "operational"
    assert status["indicator"] == "none"


async def test_written_incident_on_the_page(store: Store, client: Client) -> None:
    ids = await scenario.public(store.writer)
    async with client() as http:
        index = (await http.get("/")).text
        page = (await http.get(f"/incidents/{ids.written}")).text
    assert scenario.TITLE in index and scenario.MONITORING in index  # its latest update
    assert page.index(scenario.MONITORING) < page.index(scenario.IDENTIFIED)  # newest first
    assert page.index(scenario.IDENTIFIED) < page.index(scenario.OPENING)
    assert "<strong>Monitoring</strong>" in page
    assert "ops" not in page  # who wrote it is not published
