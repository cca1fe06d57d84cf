"""``/history.atom`` read by feedparser, as feed readers would."""

from __future__ import annotations

import calendar

import feedparser  # type: ignore[import-untyped]

from tests.statuspage.conftest import PUBLIC_URL, Client, Store
from tests.statuspage.scenarios import NOW, SCENARIOS


async def test_incidents_as_atom(store: Store, client: Client) -> None:
    await SCENARIOS["open_incident"](store.writer)
    async with client() as http:
        response = await http.get("/history.atom")
        incidents = (await http.get("/api/v2/incidents.json")).json()["incidents"]
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert feed.feed.title == "QuestCity status - incident history"
    assert feed.feed.link == f"{PUBLIC_URL}/"
    assert [e.id for e in feed.entries] == [i["shortlink"] for i in incidents]
    first = feed.entries[0]
    assert first.title == "Partial outage: Quests and accounts (investigating)"
    assert first.link == f"{PUBLIC_URL}/incidents/{incidents[0]['id']}"
    assert calendar.timegm(first.published_parsed) == NOW - 40 * 60
    assert calendar.timegm(first.updated_parsed) == NOW - 20 * 60
    content = first.content[0]
    assert content.type == "text/html"
    assert "We found a failing disk" in content.value
    assert "wedged" not in content.value  # the private note


async def test_empty_feed_is_valid(store: Store, client: Client) -> None:
    async with client() as http:
        feed = feedparser.parse((await http.get("/history.atom")).content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.entries == []
    assert feed.feed.updated_parsed is not None
