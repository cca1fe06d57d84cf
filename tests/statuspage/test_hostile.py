"""Hostile text in names and notes is escaped in every output and laid out sanely; nothing
internal the store holds reaches any output."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import feedparser  # type: ignore[import-untyped]
import httpx

from statuspage.text import NAME_LIMIT
from tests.statuspage.conftest import Client, Store
from tests.statuspage.scenarios import (
    HOSTILE_GROUP,
    HOSTILE_NAME,
    LONG_NAME,
    SECRETS,
    UNICODE_NAME,
    hostile,
    leaky,
)

SVG = "http://www.w3.org/2000/svg"


async def every_output(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """Every route with every component and incident the store has, and the error pages."""
    paths = [
        "/",
        "/api/v2/summary.json",
        "/api/v2/status.json",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/history.atom",
        "/nowhere",
        "/badge/nothing.svg",
        "/incidents/424242",
    ]
    components = (await http.get("/api/v2/components.json")).json()["components"]
    paths += [f"/badge/{c['id']}.svg" for c in components]
    incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
    paths += [f"/incidents/{i['id']}" for i in incidents]
    return {path: await http.get(path) for path in paths}


async def test_hostile_text_is_escaped_everywhere(store: Store, client: Client) -> None:
    await hostile(store.writer)
    async with client() as http:
        outputs = await every_output(http)
        page = outputs["/"].text
        components = outputs["/api/v2/components.json"].json()["components"]
        incidents = outputs["/api/v2/incidents.json"].json()["incidents"]
        badges = [r for path, r in outputs.items() if path.startswith("/badge/") and r.is_success]
        incident_page = next(
            r.text for path, r in outputs.items() if path.startswith("/incidents/") and r.is_success
        )
    for html in (page, incident_page):
        assert "<script" not in html and "<img" not in html and "<b>" not in html
        assert "<i>" not in html
        assert "\x00" not in html and "\x1b" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; It&#39;s &#34;quoted&#34;" in page
    assert "&lt;i&gt;Group&lt;/i&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in incident_page
    assert UNICODE_NAME in page

    names = {c["name"] for c in components}
    assert {HOSTILE_NAME, HOSTILE_GROUP, UNICODE_NAME} <= names
    (long_name,) = (n for n in names if n.startswith("Verylong"))
    assert len(long_name) == NAME_LIMIT and long_name.endswith("…")
    assert LONG_NAME[: NAME_LIMIT - 1] == long_name[:-1]
    note = incidents[0]["incident_updates"][0]["body"]
    assert note == "<img src=x onerror=alert(1)> \"notes\" & 'quotes'[31m\nsecond line"

    feed = feedparser.parse(outputs["/history.atom"].content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.entries[0].title.startswith("Partial outage: Verylong")
    drawn = {f"{{{SVG}}}{tag}" for tag in ("svg", "title", "rect", "g", "text")}
    for badge in badges:
        assert {element.tag for element in ET.fromstring(badge.content).iter()} <= drawn
    hostile_badge = next(b for b in badges if b"pwned" in b.content)
    texts = [t.text for t in ET.fromstring(hostile_badge.content).iter(f"{{{SVG}}}text")]
    assert texts[0] == HOSTILE_NAME[:39].rstrip() + "…"


async def test_long_names_wrap_instead_of_overflowing(store: Store, client: Client) -> None:
    """The layout half (no horizontal scroll at phone width) is checked in Chromium too."""
    await hostile(store.writer)
    async with client() as http:
        page = (await http.get("/")).text
    css = page[page.index("<style>") : page.index("</style>")]
    assert re.search(r"\.name \{[^}]*overflow-wrap: anywhere", css)
    assert re.search(r"h1, h2, h3 \{[^}]*overflow-wrap: anywhere", css)
    assert re.search(r"\.body \{[^}]*overflow-wrap: anywhere", css)


async def test_nothing_internal_reaches_any_output(store: Store, client: Client) -> None:
    await leaky(store.writer)
    async with client() as http:
        outputs = await every_output(http)
    assert len(outputs) > 10
    for path, response in outputs.items():
        text = response.content.decode().lower()
        for secret in SECRETS:
            assert secret.lower() not in text, f"{secret!r} in {path}"
    timeline = next(
        r.text for p, r in outputs.items() if p.startswith("/incidents/") and r.is_success
    )
    assert "Quests and accounts" in timeline  # the public wording is there instead
