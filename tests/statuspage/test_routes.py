"""Badges, incident pages and what unknown things answer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import API, SCENARIOS

SVG = "{http://www.w3.org/2000/svg}"


async def test_badge_by_id_by_key_and_by_name(store: Store, client: Client) -> None:
    await SCENARIOS["partial_outage"](store.writer)
    async with client() as http:
        components = (await http.get("/api/v2/components.json")).json()["components"]
        images = next(c for c in components if c["name"] == "Images")
        by_id = await http.get(f"/badge/{images['id']}.svg")
        by_name = await http.get("/badge/images.svg")
        by_key = await http.get(f"/badge/{API}/s3.svg")  # the key the CLI and the TUI use
        group = next(c for c in components if c["group"])
        group_badge = await http.get(f"/badge/{group['id']}.svg")
    assert by_id.status_code == by_name.status_code == by_key.status_code == 200
    assert group_badge.status_code == 200
    assert by_id.content == by_name.content == by_key.content
    assert by_id.headers["content-type"] == "image/svg+xml; charset=utf-8"
    assert by_id.headers["cache-control"] == "public, max-age=60"
    svg = ET.fromstring(by_id.content)
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert texts == ["Images", "partial outage · 81.81%"]
    assert svg.get("aria-label") == "Images: Partial outage, 81.81% uptime over 90 days"
    assert svg.find(f"{SVG}title") is not None
    assert [t.text for t in ET.fromstring(group_badge.content).iter(f"{SVG}text")] == [
        "QuestCity",
        "partial outage",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/badge/nope.svg",
        "/badge/questcity-api/nope.svg",
        "/badge/" + "a/" * 2000 + ".svg",  # keys hold a "/": any depth is one lookup, then 404
        "/badge/%3Cscript%3E/s3.svg",
        "/badge/.svg",
    ],
)
async def test_unknown_badges_are_an_svg_404(path: str, store: Store, client: Client) -> None:
    """A README embedding a mistyped name shows an "unknown" badge, not a broken image: an SVG
    with a 404, never the name it was asked for (nothing a client writes is drawn)."""
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "image/svg+xml; charset=utf-8"
    svg = ET.fromstring(response.content)
    assert [t.text for t in svg.iter(f"{SVG}text")] == ["status", "unknown component"]
    assert "script" not in response.text and "nope" not in response.text
    assert response.headers["etag"] and response.headers["cache-control"]


@pytest.mark.parametrize(
    "path",
    [
        "/badge/images.png",
        "/incidents/999",
        "/incidents/abc",
        "/incidents/-1",
        "/incidents/1e3",
        "/incidents/" + "9" * 40,
        "/api/v2/nothing.json",
    ],
)
async def test_unknown_things_are_404(path: str, store: Store, client: Client) -> None:
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert "There is no such page" in response.text
    assert response.headers["etag"] and response.headers["cache-control"]


async def test_head_answers_headers(store: Store, client: Client) -> None:
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        got = await http.get("/", headers={"accept-encoding": "identity"})
        head = await http.head("/", headers={"accept-encoding": "identity"})
    assert head.status_code == 200
    assert head.headers["etag"] == got.headers["etag"]


async def test_html_is_locked_down(store: Store, client: Client) -> None:
    """No script may run, nothing is fetched, the page is not framed."""
    await SCENARIOS["all_operational"](store.writer)
    async with client() as http:
        page = await http.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy and "unsafe-inline" not in policy
    assert "<script" not in page.text and " style=" not in page.text
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_incident_page_shows_public_updates_only(store: Store, client: Client) -> None:
    await SCENARIOS["open_incident"](store.writer)
    async with client() as http:
        page = (await http.get("/incidents/2")).text
    assert "We found a failing disk" in page
    assert "Saving quests may fail meanwhile." in page
    assert "wedged" not in page  # private note
    assert "reset" not in page.lower() and "ops" not in page  # breaker reset, actor
    assert "Quests and accounts is now degraded." not in page  # the daemon's own wording
    assert "Quests and accounts is running with degraded performance." in page
    assert page.index("running with degraded") < page.index("failing disk")  # newest first
