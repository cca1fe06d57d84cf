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


async def test_written_incidents_and_windows_as_atom(store: Store, client: Client) -> None:
    """People's incidents with their updates as written, and maintenance windows, as entries;
    English by default, Russian words and times with ?lang=ru (text people wrote as written)."""
    from monitor.public.settings import PageSettings, PublicSettings
    from tests.statuspage import public_scenario as scenario

    ids = await scenario.public(store.writer)
    moscow = PublicSettings(page=PageSettings(timezone="Europe/Moscow"))
    async with client(settings=moscow) as http:
        english = feedparser.parse((await http.get("/history.atom")).content)
        russian = feedparser.parse((await http.get("/history.atom?lang=ru")).content)
    for feed in (english, russian):
        assert not feed.bozo, feed.bozo_exception
        assert feed.version == "atom10"
    assert english.feed.language == "en" and russian.feed.language == "ru"
    entries = {e.id: e for e in english.entries}
    written = entries[f"{PUBLIC_URL}/incidents/{ids.written}"]
    assert written.title == f"{scenario.TITLE} (monitoring)"
    assert written.link == f"{PUBLIC_URL}/incidents/{ids.written}"
    assert calendar.timegm(written.published_parsed) == NOW - 50 * 60
    assert calendar.timegm(written.updated_parsed) == NOW - 20 * 60
    body = written.content[0].value
    assert body.index(scenario.MONITORING) < body.index(scenario.OPENING)
    assert "14 May 2025, 14:40 MSK" in body  # the newest update, in the page's zone
    past = entries[f"{PUBLIC_URL}/incidents/{ids.past}"]
    assert past.title == f"{scenario.PAST_TITLE} (postmortem)"
    assert scenario.POSTMORTEM in past.content[0].value
    upcoming = entries[f"{PUBLIC_URL}/#maintenance-{ids.upcoming}"]
    assert upcoming.title == f"Maintenance: {scenario.UPCOMING} (scheduled)"
    assert scenario.UPCOMING_MESSAGE in upcoming.content[0].value
    assert "Quests and accounts" in upcoming.content[0].value
    assert calendar.timegm(upcoming.updated_parsed) == NOW - 3600
    cancelled = entries[f"{PUBLIC_URL}/#maintenance-{ids.cancelled}"]
    assert cancelled.title == f"Maintenance: {scenario.CANCELLED} (cancelled)"
    assert "has been cancelled" in cancelled.content[0].value
    assert {e.id for e in russian.entries} == set(entries)
    translated = {e.id: e for e in russian.entries}[written.id]
    assert scenario.TITLE in translated.title and scenario.MONITORING in translated.content[0].value
    assert "14:40 MSK" in translated.content[0].value and "May" not in translated.content[0].value
    assert translated.link == f"{PUBLIC_URL}/incidents/{ids.written}?lang=ru"
