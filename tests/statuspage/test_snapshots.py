"""Snapshots of the page and the JSON for fixed histories on a frozen clock.

Refresh after an intended change with ``uv run pytest tests/statuspage --snapshot-update`` and
review the diff of ``tests/statuspage/snapshots/``. (``snapshot`` is pytest-snapshot's fixture; the
plugin ships no types.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import SCENARIOS

SNAPSHOTS = Path(__file__).parent / "snapshots"


def pretty(body: bytes) -> str:
    return json.dumps(json.loads(body), indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_page_and_json(scenario: str, store: Store, client: Client, snapshot: Any) -> None:
    await SCENARIOS[scenario](store.writer)
    snapshot.snapshot_dir = SNAPSHOTS / scenario
    async with client() as http:
        page = await http.get("/")
        summary = await http.get("/api/v2/summary.json")
        incidents = await http.get("/api/v2/incidents.json")
    assert page.status_code == summary.status_code == incidents.status_code == 200
    snapshot.assert_match(page.text, "index.html")
    snapshot.assert_match(pretty(summary.content), "summary.json")
    snapshot.assert_match(pretty(incidents.content), "incidents.json")


async def test_incident_timeline(store: Store, client: Client, snapshot: Any) -> None:
    await SCENARIOS["open_incident"](store.writer)
    snapshot.snapshot_dir = SNAPSHOTS / "open_incident"
    async with client() as http:
        (incident,) = (await http.get("/api/v2/summary.json")).json()["incidents"]
        page = await http.get(f"/incidents/{incident['id']}")
    assert page.status_code == 200
    snapshot.assert_match(page.text, "incident.html")


async def test_empty_store_says_so(store: Store, client: Client) -> None:
    async with client() as http:
        page = (await http.get("/")).text
        status = (await http.get("/api/v2/status.json")).json()["status"]
        summary = (await http.get("/api/v2/summary.json")).json()
    assert "No data yet — the monitor has not checked anything" in page
    assert status == {
        "indicator": "none",
        "description": "No data yet — the monitor has not checked anything",
    }
    assert summary["components"] == summary["incidents"] == []


async def test_missing_store_file_reads_as_empty(tmp_path: Path) -> None:
    """Started before the monitor ever ran: no file, no tables — a fresh install, not an error."""
    from tests.statuspage.conftest import serving

    async with serving(f"sqlite:///{tmp_path / 'var' / 'monitor.db'}") as http:
        page = await http.get("/")
        summary = await http.get("/api/v2/summary.json")
        feed = await http.get("/history.atom")
        missing = await http.get("/incidents/1")
    assert page.status_code == summary.status_code == feed.status_code == 200
    assert "No data yet" in page.text
    assert missing.status_code == 404


async def test_public_scenario(store: Store, client: Client, snapshot: Any) -> None:
    """What people wrote (issue #15): written, postmortem'd and taken-over incidents and
    maintenance windows, on the page, an incident's page and in the JSON."""
    from tests.statuspage.public_scenario import public

    ids = await public(store.writer)
    snapshot.snapshot_dir = SNAPSHOTS / "public"
    async with client() as http:
        page = await http.get("/")
        incident = await http.get(f"/incidents/{ids.past}")
        summary = await http.get("/api/v2/summary.json")
        incidents = await http.get("/api/v2/incidents.json")
        windows = await http.get("/api/v2/scheduled-maintenances.json")
    snapshot.assert_match(page.text, "index.html")
    snapshot.assert_match(incident.text, "incident.html")
    snapshot.assert_match(pretty(summary.content), "summary.json")
    snapshot.assert_match(pretty(incidents.content), "incidents.json")
    snapshot.assert_match(pretty(windows.content), "scheduled-maintenances.json")
