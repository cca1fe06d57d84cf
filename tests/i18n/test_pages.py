"""The status page in both languages (DESIGN §10): which language a request gets, that each is
made and cached on its own, that the Russian page has no English left in our words, that
people's words are shown as written, and times in the page's zone with the zone named."""

from __future__ import annotations

import re
from html import unescape

import httpx

from monitor.i18n import translations
from monitor.public.settings import PageSettings, PublicSettings
from monitor.store import IncidentComponent, Status
from statuspage.app import StatusPage
from tests.i18n.extraction import extract
from tests.statuspage.conftest import Client, Store, _migrated_store, client, store
from tests.statuspage.scenarios import API, NOW, open_incident

__all__ = ["_migrated_store", "client", "store"]  # the status page's fixtures, used here

MOSCOW = PublicSettings(page=PageSettings(timezone="Europe/Moscow"))
NOTE = "We found a failing disk and are moving to a replica."  # written by a person


async def _incident(http: httpx.AsyncClient) -> str:
    """The path of the scenario's one incident, as the page links it."""
    found = re.search(r'href="(/incidents/\d+)\?lang=en"', (await http.get("/?lang=en")).text)
    assert found is not None
    return found.group(1)


def _lang(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)">', html)
    assert found is not None, html[:200]
    return found.group(1)


CASES = [
    ("", None, "en"),
    ("", "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
    ("?lang=ru", None, "ru"),
    ("?lang=ru", "en-US,en;q=0.9", "ru"),  # ?lang= wins
    ("?lang=en", "ru", "en"),
    ("?lang=xx", None, "en"),  # unknown: ignored
    ("?lang=xx", "ru", "ru"),
    ("", "de;q=" + "9" * 5000, "en"),  # garbage
]


async def test_the_language_a_request_gets(store: Store, client: Client) -> None:
    await open_incident(store.writer)
    async with client() as http:
        paths = ("/", await _incident(http), "/no-such-page")
        for query, header, expected in CASES:
            headers = {"accept-language": header} if header is not None else {}
            for path in paths:
                answer = await http.get(path + query, headers=headers)
                assert _lang(answer.text) == expected, (path, query, header)
                assert "Accept-Language" in answer.headers["vary"], path


async def test_each_language_is_made_once_and_cached(store: Store, client: Client) -> None:
    await open_incident(store.writer)
    async with client() as http:
        english = await http.get("/")
        russian = await http.get("/?lang=ru")
        page: StatusPage = http._transport.app.state.statuspage  # type: ignore[attr-defined]
        assert page.cache is not None
        outputs = (await page.cache.current()).outputs
        assert {"index:en", "index:ru"} <= set(outputs)
        kept = outputs["index:ru"]
        again = await http.get("/", headers={"accept-language": "ru"})
        assert (await page.cache.current()).outputs["index:ru"] is kept
        assert again.headers["etag"] == russian.headers["etag"] != english.headers["etag"]
        assert again.content == russian.content != english.content
        # a validator from the Russian page does not match the English one (Vary and ETag)
        cached = {"if-none-match": russian.headers["etag"]}
        assert (await http.get("/?lang=ru", headers=cached)).status_code == 304
        assert (await http.get("/?lang=en", headers=cached)).status_code == 200


async def test_the_russian_page_speaks_russian(store: Store, client: Client) -> None:
    await open_incident(store.writer)
    async with client() as http:
        path = await _incident(http)
        index = (await http.get("/?lang=ru")).text
        incident = (await http.get(path + "?lang=ru")).text
        missing = (await http.get("/nowhere?lang=ru")).text
    banner = re.search(r'<h1 id="banner">.*?<span>(.*?)</span>', index)
    assert banner is not None and banner.group(1) == "Снижение производительности"
    for words in ("Открытые инциденты", "Прошедшие инциденты (за 14 дней)", "Сегодня", "Статус"):
        assert words in index, words
    assert "Время указано по часовому поясу UTC." in index
    # the machine's words of an automatic incident, in Russian
    assert "Частичный сбой: Quests and accounts" in index
    assert "Quests and accounts работает медленнее обычного" in incident
    assert "Обновления" in incident and "Выясняем причину" in incident
    assert "Страница не найдена" in missing
    # people's words, as written
    assert "QuestCity API (Europe)" in index
    assert '<h3 class="name">Quests and accounts</h3>' in index
    assert "Quests and accounts" in incident
    assert NOTE in unescape(incident)
    # the switcher leads to the other language, links keep this one
    assert 'href="/?lang=en" hreflang="en" lang="en">English</a>' in index
    assert f'href="{path}?lang=en" hreflang="en"' in incident
    assert f'href="{path}?lang=ru"' in index


async def test_no_english_left_on_the_russian_page(store: Store, client: Client) -> None:
    """Every fixed text of the templates that Russian translates: not on the Russian page."""
    await open_incident(store.writer)
    ru = translations("ru").gettext
    fixed = [
        m.id
        for m in extract()
        if isinstance(m.id, str)
        and m.id
        and "%" not in m.id
        and "<" not in m.id
        and any(path.startswith("statuspage/templates/") for path, _ in m.locations)
        and ru(m.id) != m.id
    ]
    assert len(fixed) > 15
    async with client() as http:
        paths = ("/", await _incident(http), "/x")
        pages = [(await http.get(p + "?lang=ru")).text for p in paths]
    text = "\n".join(unescape(re.sub(r"<[^>]+>", "\n", page)) for page in pages)
    lines = {line.strip() for line in text.splitlines()}
    leftovers = [english for english in fixed if english in lines]
    assert not leftovers


async def test_english_is_unchanged(store: Store, client: Client) -> None:
    await open_incident(store.writer)
    async with client() as http:
        index = (await http.get("/")).text
    assert "Partial outage: Quests and accounts" in index
    assert "Open incidents" in index and "Times are in UTC." in index
    assert 'href="/?lang=ru" hreflang="ru" lang="ru">Русский</a>' in index


async def test_times_in_the_pages_zone(store: Store, client: Client) -> None:
    await open_incident(store.writer)  # last checked 11:59:30 UTC on 14 May 2025
    async with client(settings=MOSCOW) as http:
        english = (await http.get("/")).text
        russian = (await http.get("/?lang=ru")).text
        summary = (await http.get("/api/v2/summary.json")).json()
    assert '<time datetime="2025-05-14T11:59Z">14 May 2025, 14:59 MSK</time>' in english
    assert '<time datetime="2025-05-14T11:59Z">14 мая 2025 г., 14:59 MSK</time>' in russian
    assert "Times are in Europe/Moscow (MSK)." in english
    assert "Время указано по часовому поясу Europe/Moscow (MSK)." in russian
    assert "UTC" not in re.sub(r'datetime="[^"]*"', "", english.split("<footer")[0])
    # a day of the bars is named in the zone's days and the language
    assert 'aria-label="14 мая 2025 г.: доступность' in russian
    assert summary["page"]["updated_at"].endswith("Z")  # JSON stays UTC


async def test_what_people_write_is_shown_as_written(store: Store, client: Client) -> None:
    """A person's title and update, even in words the catalogue translates, are not translated;
    only the page's own words around them are."""
    await open_incident(store.writer)
    incident = await store.writer.open_written_incident(
        "Major outage",  # a person's title that happens to be one of our words
        [IncidentComponent(API, "s3", Status.UNHEALTHY)],
        "Картинки не грузятся — чиним. <b>Images</b> are down.",
        "ops",
        NOW - 120,
    )
    async with client() as http:
        for lang in ("en", "ru"):
            page = (await http.get(f"/incidents/{incident}?lang={lang}")).text
            assert "<h1>Major outage</h1>" in page, lang
            assert "Картинки не грузятся — чиним. &lt;b&gt;Images&lt;/b&gt; are down." in page
            assert ("Обновления" in page) == (lang == "ru")
