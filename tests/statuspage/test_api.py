"""The JSON endpoints against Atlassian Statuspage's field names and value sets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.statuspage.conftest import PUBLIC_URL, Client, Store
from tests.statuspage.scenarios import SCENARIOS

PAGE = {"id", "name", "url", "time_zone", "updated_at"}
STATUS = {"indicator", "description"}
COMPONENT = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}
INCIDENT = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
}
UPDATE = {
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
}
INDICATORS = {"none", "minor", "major", "critical"}
COMPONENT_STATUSES = {
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
IMPACTS = {"none", "minor", "major", "critical"}


def timestamp(value: Any, *, nullable: bool = False) -> None:
    if nullable and value is None:
        return
    assert isinstance(value, str) and value.endswith("Z"), value
    datetime.fromisoformat(value)


def check_page(page: dict[str, Any]) -> None:
    assert set(page) == PAGE
    assert page["url"] == PUBLIC_URL
    assert page["time_zone"] == "Etc/UTC"
    timestamp(page["updated_at"])


def check_components(
    components: list[dict[str, Any]], page_id: str, *, complete: bool = True
) -> None:
    """``complete``: the list holds every component (so groups and members refer within it)."""
    ids = {c["id"] for c in components}
    for component in components:
        extra = {"components"} if component["group"] else set()
        assert set(component) - {"uptime"} == COMPONENT | extra, component  # ours: #14
        assert component["status"] in COMPONENT_STATUSES
        assert component["page_id"] == page_id
        assert isinstance(component["position"], int) and component["position"] >= 1
        assert isinstance(component["showcase"], bool)
        assert component["start_date"] is None
        assert component["only_show_if_degraded"] is False
        timestamp(component["created_at"])
        timestamp(component["updated_at"])
        if component["group"]:
            assert component["group_id"] is None
            assert not complete or set(component["components"]) <= ids
        else:
            assert not complete or component["group_id"] in (None, *ids)


def check_incidents(incidents: list[dict[str, Any]], page_id: str) -> None:
    for incident in incidents:
        assert set(incident) == INCIDENT, incident
        assert incident["status"] in INCIDENT_STATUSES
        assert incident["impact"] in IMPACTS
        assert incident["page_id"] == page_id
        assert incident["shortlink"] == f"{PUBLIC_URL}/incidents/{incident['id']}"
        assert isinstance(incident["id"], str)
        for key in ("created_at", "updated_at", "started_at"):
            timestamp(incident[key])
        for key in ("monitoring_at", "resolved_at"):
            timestamp(incident[key], nullable=True)
        closed = incident["status"] in ("resolved", "postmortem")
        assert (incident["resolved_at"] is None) == (not closed)
        check_components(incident["components"], page_id, complete=False)
        for update in incident["incident_updates"]:
            assert set(update) == UPDATE, update
            assert update["status"] in INCIDENT_STATUSES
            assert update["incident_id"] == incident["id"]
            assert isinstance(update["body"], str) and update["body"]
            for key in ("created_at", "updated_at", "display_at"):
                timestamp(update[key])
            for affected in update["affected_components"] or []:
                assert set(affected) == {"code", "name", "old_status", "new_status"}
                assert {affected["old_status"], affected["new_status"]} <= COMPONENT_STATUSES


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_statuspage_shapes(scenario: str, store: Store, client: Client) -> None:
    await SCENARIOS[scenario](store.writer)
    async with client() as http:
        responses = {
            name: await http.get(f"/api/v2/{name}.json")
            for name in ("summary", "status", "components", "incidents")
        }
    for response in responses.values():
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
    summary, status, components, incidents = (r.json() for r in responses.values())
    assert set(summary) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    assert set(status) == {"page", "status"}
    assert set(components) == {"page", "components"}
    assert set(incidents) == {"page", "incidents"}
    for document in (summary, status, components, incidents):
        check_page(document["page"])
        assert document["page"] == summary["page"]
    page_id = summary["page"]["id"]
    assert set(summary["status"]) == STATUS
    assert summary["status"]["indicator"] in INDICATORS
    assert status["status"] == summary["status"]
    check_components(summary["components"], page_id)
    assert components["components"] == summary["components"]
    check_incidents(summary["incidents"], page_id)
    check_incidents(incidents["incidents"], page_id)
    assert all(i["status"] != "resolved" for i in summary["incidents"])
    assert summary["scheduled_maintenances"] == []


@pytest.mark.parametrize(
    ("scenario", "indicator", "description"),
    [
        ("all_operational", "none", "All systems operational"),
        ("partial_outage", "major", "Partial outage"),
        ("major_outage", "critical", "Major outage"),
        ("open_incident", "minor", "Degraded performance"),
    ],
)
async def test_indicator_is_the_worst_component(
    scenario: str, indicator: str, description: str, store: Store, client: Client
) -> None:
    await SCENARIOS[scenario](store.writer)
    async with client() as http:
        status = (await http.get("/api/v2/status.json")).json()["status"]
        page = (await http.get("/")).text
    assert status == {"indicator": indicator, "description": description}
    assert f"<span>{description}</span>" in page


async def test_component_statuses_map_from_the_store(store: Store, client: Client) -> None:
    """healthy → operational, degraded → degraded_performance, unhealthy → partial_outage; a
    group takes the worst of its members."""
    await SCENARIOS["partial_outage"](store.writer)
    async with client() as http:
        partial = {
            c["name"]: c["status"]
            for c in (await http.get("/api/v2/components.json")).json()["components"]
        }
    assert partial == {
        "QuestCity": "partial_outage",
        "QuestCity API": "degraded_performance",
        "Quests and accounts": "operational",
        "Images": "partial_outage",
        "Regions": "operational",
        "QuestCity API (Europe)": "operational",
    }


async def test_unreachable_target_takes_its_services_down(store: Store, client: Client) -> None:
    await SCENARIOS["major_outage"](store.writer)
    async with client() as http:
        components = (await http.get("/api/v2/components.json")).json()["components"]
    statuses = {c["name"]: c["status"] for c in components}
    assert statuses["QuestCity API"] == "major_outage"
    assert statuses["Quests and accounts"] == statuses["Images"] == "major_outage"
    assert statuses["QuestCity API (Europe)"] == "operational"


async def test_components_without_checks_are_left_out(store: Store, client: Client) -> None:
    """Statuspage has no "unknown": a component is published from its first check on."""
    from monitor.store import Status
    from tests.statuspage.scenarios import CATALOGUE, EU, NOW, check

    await store.writer.sync_components(CATALOGUE)
    await check(store.writer, EU, NOW - 30, Status.HEALTHY, 80.0)
    async with client() as http:
        components = (await http.get("/api/v2/components.json")).json()["components"]
        page = (await http.get("/")).text
    assert [c["name"] for c in components] == ["Regions", "QuestCity API (Europe)"]
    assert page.count("<span>No data</span>") == 3


async def test_monitoring_then_resolved(store: Store, client: Client) -> None:
    """Open and healthy again → monitoring (monitoring_at set); resolved → resolved."""
    from monitor.store import IncidentEvent, Status
    from tests.statuspage.scenarios import API, CATALOGUE, NOW

    writer = store.writer
    await writer.sync_components(CATALOGUE)
    incident = await writer.open_incident(API, "s3", Status.DEGRADED, NOW - 600, "x")
    await writer.add_event(
        incident, IncidentEvent(NOW - 300, "state_change", Status.HEALTHY, "x", True)
    )
    async with client() as http:
        (open_,) = (await http.get("/api/v2/incidents.json")).json()["incidents"]
        await writer.resolve_incident(incident, NOW - 60, "x")
        (closed,) = (await http.get("/api/v2/incidents.json")).json()["incidents"]
    assert open_["status"] == "monitoring"
    assert open_["monitoring_at"] == "2025-05-14T11:55:00.000Z"
    assert open_["resolved_at"] is None
    assert [u["status"] for u in open_["incident_updates"]] == ["monitoring", "investigating"]
    assert closed["status"] == "resolved"
    assert closed["resolved_at"] == "2025-05-14T11:59:00.000Z"
    assert closed["monitoring_at"] == open_["monitoring_at"]
    assert [u["status"] for u in closed["incident_updates"]] == [
        "resolved",
        "monitoring",
        "investigating",
    ]
