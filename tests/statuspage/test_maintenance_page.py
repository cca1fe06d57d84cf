"""Maintenance windows on the page and in Statuspage's endpoints, and the page's reader-facing
bits of issue #15: self-refresh, honest young data, the badge list, the subscribe link."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from monitor.public.settings import PageSettings, PublicSettings, SubscriptionSettings
from monitor.store import Status
from tests.statuspage import public_scenario as scenario
from tests.statuspage.conftest import PUBLIC_URL, Client, Store
from tests.statuspage.scenarios import API, CATALOGUE, DAY, EU, HEALTHY_SERVICES, NOW, check

SVG = "{http://www.w3.org/2000/svg}"
MOSCOW = PublicSettings(page=PageSettings(timezone="Europe/Moscow", refresh=30))


def names(document: dict[str, Any]) -> list[str]:
    return [m["name"] for m in document["scheduled_maintenances"]]


async def test_maintenance_endpoints(store: Store, client: Client) -> None:
    ids = await scenario.public(store.writer)
    async with client() as http:
        everything = (await http.get("/api/v2/scheduled-maintenances.json")).json()
        upcoming = (await http.get("/api/v2/scheduled-maintenances/upcoming.json")).json()
        active = (await http.get("/api/v2/scheduled-maintenances/active.json")).json()
        summary = (await http.get("/api/v2/summary.json")).json()
    assert names(upcoming) == [scenario.UPCOMING]  # the cancelled one is not coming
    assert names(active) == [scenario.ACTIVE]
    assert names(summary) == [scenario.ACTIVE, scenario.UPCOMING]
    # newest start first, the cancelled one kept as completed (Statuspage has no "cancelled")
    assert names(everything) == [
        scenario.CANCELLED,
        scenario.UPCOMING,
        scenario.ACTIVE,
        scenario.COMPLETED,
    ]
    status = {m["name"]: m["status"] for m in everything["scheduled_maintenances"]}
    assert status == {
        scenario.CANCELLED: "completed",
        scenario.UPCOMING: "scheduled",
        scenario.ACTIVE: "in_progress",
        scenario.COMPLETED: "completed",
    }
    (window,) = upcoming["scheduled_maintenances"]
    assert window["impact"] == "maintenance"
    assert window["scheduled_for"] == "2025-05-15T12:00:00.000Z"
    assert window["scheduled_until"] == "2025-05-15T14:00:00.000Z"
    assert window["resolved_at"] is None
    assert [(u["status"], u["body"]) for u in window["incident_updates"]] == [
        ("scheduled", scenario.UPCOMING_MESSAGE)
    ]
    assert [c["name"] for c in window["components"]] == ["Quests and accounts"]
    assert window["shortlink"] == f"{PUBLIC_URL}/#maintenance-{ids.upcoming}"
    (running,) = active["scheduled_maintenances"]
    assert [u["status"] for u in running["incident_updates"]] == ["in_progress", "scheduled"]
    assert running["incident_updates"][0]["created_at"] == "2025-05-14T11:31:00.000Z"
    assert running["components"][0]["status"] == "under_maintenance"
    by_name = {m["name"]: m for m in everything["scheduled_maintenances"]}
    cancelled = by_name[scenario.CANCELLED]
    assert cancelled["resolved_at"] == "2025-05-14T11:50:00.000Z"
    assert cancelled["incident_updates"][0]["body"] == (
        "This scheduled maintenance has been cancelled."
    )
    assert [u["status"] for u in cancelled["incident_updates"]] == ["completed", "scheduled"]
    done = by_name[scenario.COMPLETED]
    assert [u["status"] for u in done["incident_updates"]] == [
        "completed",
        "in_progress",
        "scheduled",
    ]
    assert done["resolved_at"] == "2025-05-09T13:00:05.000Z"


async def test_components_under_maintenance(store: Store, client: Client) -> None:
    await scenario.public(store.writer)
    async with client() as http:
        components = (await http.get("/api/v2/components.json")).json()["components"]
        status = (await http.get("/api/v2/status.json")).json()["status"]
        badge = await http.get("/badge/questcity-api-europe.svg")
    by_name = {c["name"]: c for c in components}
    assert by_name["QuestCity API (Europe)"]["status"] == "under_maintenance"
    assert by_name["Regions"]["status"] == "under_maintenance"  # its only member
    assert by_name["QuestCity API (Europe)"]["updated_at"] == "2025-05-14T11:30:00.000Z"
    # the page's indicator stays Statuspage's: from the components not under maintenance
    assert status == {"indicator": "major", "description": "Partial outage"}
    texts = [t.text or "" for t in ET.fromstring(badge.content).iter(f"{SVG}text")]
    assert texts[1].startswith("maintenance")


async def test_only_maintenance_reads_none(store: Store, client: Client) -> None:
    """Every component in a window and nothing else wrong: indicator none, said so."""
    await store.writer.sync_components(CATALOGUE[3:])  # Europe alone
    await check(store.writer, EU, NOW - 30, Status.UNREACHABLE, None, error="timeout")
    await store.writer.schedule_maintenance("Move", [EU], NOW - 60, NOW + 60, None, "o", NOW - 90)
    async with client() as http:
        status = (await http.get("/api/v2/status.json")).json()["status"]
        page = (await http.get("/")).text
    assert status == {"indicator": "none", "description": "Under maintenance"}
    assert 'class="banner s-maintenance"' in page and "Major outage" not in page


async def test_maintenance_on_the_page(store: Store, client: Client) -> None:
    ids = await scenario.public(store.writer)
    async with client(settings=MOSCOW) as http:
        page = (await http.get("/")).text
        russian = (await http.get("/?lang=ru")).text
    active = page.index("Maintenance in progress")
    upcoming = page.index("Scheduled maintenance</h2>")
    assert page.index(scenario.ACTIVE) > active
    assert upcoming < page.index(scenario.UPCOMING) and scenario.UPCOMING_MESSAGE in page
    assert scenario.CANCELLED not in page and scenario.COMPLETED not in page
    assert "15 May 2025, 15:00 MSK" in page  # the upcoming start, in the page's zone
    assert f'id="maintenance-{ids.upcoming}"' in page  # the shortlink's anchor
    europe = page[page.index("QuestCity API (Europe)</h3>") :]
    assert europe.index("s-maintenance") < europe.index("</li>")
    assert "Under maintenance" in europe[: europe.index("</li>")]
    assert "MSK" in russian and scenario.ACTIVE in russian  # written text shown as written


async def test_refresh_and_subscribe_link(
    store: Store, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await scenario.public(store.writer)
    # The link only where /subscribe answers: on, and with the signing secret set.
    monkeypatch.setenv("QUESTCITY_SUBSCRIPTION_SECRET", "s" * 40)
    subscribing = PublicSettings(
        page=PageSettings(refresh=45), subscriptions=SubscriptionSettings(enabled=True)
    )
    async with client(settings=MOSCOW) as http:
        page = (await http.get("/")).text
        incident = (await http.get("/incidents/1")).text
        missing = (await http.get("/nothing")).text
    async with client(settings=PublicSettings(page=PageSettings(refresh=0))) as http:
        still = (await http.get("/")).text
    async with client(settings=subscribing) as http:
        offered = (await http.get("/")).text
    assert '<meta http-equiv="refresh" content="30">' in page
    assert '<meta http-equiv="refresh" content="30">' in incident
    assert "http-equiv" not in missing and "http-equiv" not in still
    assert 'href="/subscribe' not in page
    assert 'href="/subscribe' in offered and '<meta http-equiv="refresh" content="45">' in offered


async def test_young_history_says_since(store: Store, client: Client) -> None:
    """Checked for three days: "Since 12 May 2025", "uptime since", no "90 days ago", and one
    hour of response times draws no chart."""
    await store.writer.sync_components(CATALOGUE)
    for days_ago in (2, 1):
        await check(store.writer, API, NOW - days_ago * DAY, Status.HEALTHY, 40.0, HEALTHY_SERVICES)
        await check(store.writer, EU, NOW - days_ago * DAY, Status.HEALTHY, 80.0)
    await check(store.writer, API, NOW - 30, Status.HEALTHY, 40.0, HEALTHY_SERVICES)
    await check(store.writer, EU, NOW - 30, Status.HEALTHY, 80.0)
    async with client() as http:
        page = (await http.get("/")).text
        russian = (await http.get("/?lang=ru")).text
    assert "90 days ago" not in page
    assert page.count("<span>Since 12 May 2025</span>") == 4
    assert "100% uptime since 12 May 2025" in page
    assert "12 мая 2025" in russian
    assert 'class="spark"' not in page  # one hour in the last 24: a dot, not a chart
    assert 'class="d-none"' in page  # the days before the first check: no data, not down


async def test_badge_list(store: Store, client: Client) -> None:
    await scenario.public(store.writer)
    async with client() as http:
        page = (await http.get("/")).text
        badge = await http.get("/badge/images.svg")
    listed = page[page.index('id="badges"') :]
    assert "<code>/badge/images.svg</code>" in listed
    assert "<code>/badge/quests-and-accounts.svg</code>" in listed
    assert badge.status_code == 200


async def test_window_starts_and_ends_by_the_clock(store: Store, client: Client) -> None:
    """Nothing is written when a window's start or end comes (a monitor may be late to mark it):
    the page turns by the clock alone, within the hour the cache would otherwise keep."""
    await store.writer.sync_components(CATALOGUE)
    await check(store.writer, EU, NOW - 30, Status.HEALTHY, 80.0)
    start, end = NOW + 60, NOW + 120  # all within one hour: no hourly refresh helps
    await store.writer.schedule_maintenance("Move", [EU], start, end, None, "ops", NOW - 60)
    clock = [NOW]
    async with client(clock=lambda: clock[0]) as http:
        before = (await http.get("/api/v2/components.json")).json()["components"]
        clock[0] = start + 1
        during = (await http.get("/api/v2/components.json")).json()["components"]
        active = (await http.get("/api/v2/scheduled-maintenances/active.json")).json()
        clock[0] = end + 1
        after = (await http.get("/api/v2/components.json")).json()["components"]
    europe = "QuestCity API (Europe)"
    assert {c["name"]: c["status"] for c in before}[europe] == "operational"
    assert {c["name"]: c["status"] for c in during}[europe] == "under_maintenance"
    assert names(active) == ["Move"]
    assert {c["name"]: c["status"] for c in after}[europe] == "operational"
