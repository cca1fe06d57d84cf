"""The 90-day bars judge a day by the same rule as the component list beside them
(:mod:`monitor.impact`): a critical service down is a major outage on its bar, and so is its
target unhealthy that day; a service that is not critical stays a partial outage."""

from __future__ import annotations

import re

from monitor.store import Status
from tests.statuspage.conftest import Client, Store
from tests.statuspage.test_incident_components import outage

U = Status.UNHEALTHY


def today(page: str, name: str) -> str:
    """The last (today's) segment's label of the named component's bar."""
    label = rf'aria-label="Uptime of {re.escape(name)} per day[^"]*">(.*?)</ol>'
    bar = re.search(label, page, re.S)
    assert bar is not None, name
    labels: list[str] = re.findall(r'aria-label="([^"]*)"', bar.group(1))
    return labels[-1]


async def test_a_critical_database_down_reads_major_outage_on_its_bar_and_its_targets(
    store: Store, client: Client
) -> None:
    await outage(store, database=U, s3=U, api=U)
    async with client() as http:
        page = (await http.get("/")).text
        statuses = {
            c["name"]: c["status"]
            for c in (await http.get("/api/v2/summary.json")).json()["components"]
        }

    assert statuses["Quests and accounts"] == statuses["QuestCity API"] == "major_outage"
    assert today(page, "Quests and accounts").endswith("worst: major outage")
    assert today(page, "QuestCity API").endswith("worst: major outage")
    assert statuses["Images"] == "partial_outage"
    assert today(page, "Images").endswith("worst: partial outage")
