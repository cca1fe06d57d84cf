"""Incidents by cause on the status page (issue #14): every affected component with its impact
word, Statuspage's ``components`` and ``impact`` in the JSON, a critical database down a major
outage, and the title's word the body's."""

from __future__ import annotations

import re
from typing import Any

from monitor.store import Component, IncidentComponent, Status
from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import API, NOW, check

CATALOGUE = (
    Component(API, "", "QuestCity API", "QuestCity", 0),
    Component(API, "database", "Quests and accounts", "QuestCity", 1, critical=True),
    Component(API, "s3", "Images", "QuestCity", 2),
)
U, D = Status.UNHEALTHY, Status.DEGRADED


async def outage(store: Store, *, database: Status, s3: Status, api: Status) -> None:
    await store.writer.sync_components(CATALOGUE)
    services = {"database": (database, 3.0), "s3": (s3, 9.0)}
    await check(store.writer, API, NOW - 30, api, services=services)


async def read(client: Client) -> tuple[list[dict[str, Any]], dict[str, Any], str, str]:
    async with client() as http:
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        summary = (await http.get("/api/v2/summary.json")).json()
        page = (await http.get("/")).text
        detail = (await http.get(f"/incidents/{incidents[0]['id']}")).text
    return incidents, summary, page, detail


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_critical_database_down_is_a_major_outage_everywhere(
    store: Store, client: Client
) -> None:
    await outage(store, database=U, s3=Status.HEALTHY, api=U)
    await store.writer.open_incident(
        API,
        "database",
        U,
        NOW - 60,
        "whatever the daemon wrote",
        components=[IncidentComponent(API, "database", U, True), IncidentComponent(API, "", U)],
    )
    (incident,), summary, page, detail = await read(client)
    assert incident["name"] == "Major outage: Quests and accounts"
    assert incident["impact"] == "critical"
    assert [(c["name"], c["status"]) for c in incident["components"]] == [
        ("Quests and accounts", "major_outage"),
        ("QuestCity API", "major_outage"),
    ]
    assert summary["incidents"] == [incident]
    assert summary["status"] == {"indicator": "critical", "description": "Major outage"}
    statuses = {c["name"]: c["status"] for c in summary["components"]}
    assert statuses["Quests and accounts"] == statuses["QuestCity API"] == "major_outage"
    (update,) = incident["incident_updates"]
    assert update["body"] == (
        "We are investigating a problem: Quests and accounts is unavailable (major outage)."
        " Also affected: QuestCity API (major outage)."
    )
    affected = "Affected: Quests and accounts (major outage), QuestCity API (major outage)"
    for html in (text(page), text(detail)):
        assert "Major outage: Quests and accounts" in html
        assert affected in html
        assert "Partial outage" not in html
    assert "whatever the daemon wrote" not in page + detail


async def test_s3_down_is_one_incident_with_the_api_degraded_beside_it(
    store: Store, client: Client
) -> None:
    await outage(store, database=Status.HEALTHY, s3=U, api=D)
    await store.writer.open_incident(
        API,
        "s3",
        U,
        NOW - 60,
        "x",
        components=[IncidentComponent(API, "s3", U), IncidentComponent(API, "", D)],
    )
    (incident,), summary, page, detail = await read(client)
    assert (incident["name"], incident["impact"]) == ("Partial outage: Images", "major")
    assert [(c["name"], c["status"]) for c in incident["components"]] == [
        ("Images", "partial_outage"),
        ("QuestCity API", "degraded_performance"),
    ]
    ids = {c["id"] for c in summary["components"]}
    assert {c["id"] for c in incident["components"]} <= ids, "the components' own ids"
    body = incident["incident_updates"][0]["body"]
    assert body == (
        "We are investigating a problem: Images is partly unavailable (partial outage)."
        " Also affected: QuestCity API (degraded performance)."
    )
    word = incident["name"].split(":")[0].lower()
    assert word in body, "the title's word is the body's"
    assert "Affected: Images (partial outage), QuestCity API (degraded performance)" in text(page)
    assert "Affected: Images (partial outage), QuestCity API (degraded performance)" in text(detail)


async def test_the_title_follows_the_incident_when_its_impact_grows(
    store: Store, client: Client
) -> None:
    await outage(store, database=Status.HEALTHY, s3=D, api=Status.HEALTHY)
    incident = await store.writer.open_incident(
        API, "s3", D, NOW - 120, "x", components=[IncidentComponent(API, "s3", D)]
    )
    (before,), _, _, _ = await read(client)
    await store.writer.set_incident_components(
        incident, [IncidentComponent(API, "s3", U), IncidentComponent(API, "", D)], NOW - 60
    )
    (after,), _, _, _ = await read(client)
    assert (before["name"], before["impact"]) == ("Degraded performance: Images", "minor")
    assert (after["name"], after["impact"]) == ("Partial outage: Images", "major")
    assert len(after["components"]) == 2


async def test_an_incident_written_before_components_lists_its_cause(
    store: Store, client: Client
) -> None:
    await outage(store, database=Status.HEALTHY, s3=U, api=D)
    await store.writer.open_incident(API, "s3", U, NOW - 60, "Images is down")
    (incident,), _, page, _ = await read(client)
    assert incident["name"] == "Partial outage: Images"
    assert [c["name"] for c in incident["components"]] == ["Images"]
    assert "Affected: Images (partial outage)" in text(page)
