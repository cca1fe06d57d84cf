"""The page in headless Chromium (Debian's ``chromium``, driven by Playwright for Python; never a
downloaded browser): it renders, the bars are there, nothing logs an error, nothing scrolls
sideways at phone width, and a day of the bar says what it is when focused from the keyboard.

The app runs under uvicorn on a free loopback port. Screenshots go to ``artifacts/statuspage/``
(git-ignored). The browser comes from ``scripts/ensure-system-deps`` (Debian package
``chromium``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page

from monitor.store import create_schema, open_engine
from monitor.store.writer import HistoryWriter
from statuspage.app import create_app
from tests.statuspage.scenarios import NOW, Scenario, hostile, open_incident
from tests.support.browser import chromium
from tests.support.ports import free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "statuspage"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}

pytestmark = pytest.mark.timeout(180)


async def _write(url: str, scenario: Scenario) -> None:
    engine = open_engine(url)
    try:
        await create_schema(engine)
        await scenario(HistoryWriter(engine))
    finally:
        await engine.dispose()


@contextmanager
def serving(url: str) -> Iterator[str]:
    """The status page under uvicorn in a thread; its base URL."""
    port = free_port()
    app = create_app(url, clock=lambda: NOW, public_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="statuspage-uvicorn", daemon=True)
    thread.start()
    started = threading.Event()
    try:
        for _ in range(200):
            if server.started or not thread.is_alive():
                break
            started.wait(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def _inspect(page: Page, base: str, name: str) -> dict[str, object]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if _is_error(m) else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    response = page.goto(f"{base}/", wait_until="load")
    assert response is not None and response.status == 200
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    facts: dict[str, object] = page.evaluate(
        """() => ({
            scrollWidth: document.documentElement.scrollWidth,
            innerWidth: window.innerWidth,
            banner: document.querySelector('#banner').textContent.trim(),
            bars: document.querySelectorAll('ol.bars').length,
            segments: document.querySelectorAll('ol.bars li').length,
            components: document.querySelectorAll('li.component').length,
            sparklines: document.querySelectorAll('svg.spark polyline').length,
            background: getComputedStyle(document.body).backgroundColor,
            iconsDrawn: [...document.querySelectorAll('.status svg.icon')]
                .every(svg => svg.getBoundingClientRect().width > 0),
        })"""
    )
    facts["problems"] = problems
    return facts


def _is_error(message: ConsoleMessage) -> bool:
    return message.type in ("error", "warning")


@pytest.mark.parametrize("scenario", [open_incident, hostile], ids=["open_incident", "hostile"])
def test_page_in_chromium(scenario: Scenario, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    asyncio.run(_write(url, scenario))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(url) as base, chromium() as browser:
        for viewport, (width, height) in VIEWPORTS.items():
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    viewport={"width": width, "height": height}, color_scheme=scheme
                )
                page = context.new_page()
                name = f"{scenario.__name__}-{viewport}-{scheme}"
                facts = _inspect(page, base, name)
                assert facts["problems"] == [], (name, facts["problems"])
                assert facts["scrollWidth"] == facts["innerWidth"], (name, facts)
                assert facts["bars"] == facts["components"] != 0, (name, facts)
                assert facts["segments"] == 90 * int(str(facts["components"])), facts
                assert facts["sparklines"], facts
                assert facts["iconsDrawn"], facts
                dark = facts["background"] == "rgb(13, 17, 23)"
                assert dark == (scheme == "dark"), (name, facts["background"])
                if viewport == "phone" and scheme == "light":
                    _keyboard(page, name)
                context.close()


def _keyboard(page: Page, name: str) -> None:
    """Tab from the top reaches a day of the first bar, which then says what it is."""
    page.keyboard.press("Tab")  # the skip link
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('ol.bars li')"):
            break
    label = page.evaluate("document.activeElement.getAttribute('aria-label')")
    tooltip = page.evaluate(
        "getComputedStyle(document.activeElement, '::after').getPropertyValue('content')"
    )
    assert label and ": " in label, label
    assert tooltip == f'"{label}"'
    page.screenshot(path=ARTIFACTS / f"{name}-focused-day.png")
    assert page.evaluate("document.documentElement.scrollWidth === window.innerWidth"), (
        "the tooltip widened the page"
    )


LANGUAGE_WIDTHS = {"desktop": 1280, "phone": 375}
KEY_TEXTS = {
    "en": {"banner": "Degraded performance", "open": "Open incidents", "updates": "Updates"},
    "ru": {
        "banner": "Снижение производительности",
        "open": "Открытые инциденты",
        "updates": "Обновления",
    },
}


def test_both_languages_in_chromium(tmp_path: Path) -> None:
    """The index and an incident in English and Russian at desktop and phone widths: the
    language the browser asks for (its locale's Accept-Language) is the page's ``lang``, its
    key texts are visible, nothing scrolls sideways, and the incident link keeps the language."""
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    asyncio.run(_write(url, open_incident))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(url) as base, chromium() as browser:
        for viewport, width in LANGUAGE_WIDTHS.items():
            for lang, texts in KEY_TEXTS.items():
                context = browser.new_context(
                    viewport={"width": width, "height": 800},
                    locale="ru-RU" if lang == "ru" else "en-US",
                )
                page = context.new_page()
                problems: list[str] = []
                page.on("console", functools.partial(_collect, problems))
                response = page.goto(f"{base}/", wait_until="load")
                assert response is not None and response.status == 200
                name = f"lang-{lang}-{viewport}"
                page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
                banner = page.locator("#banner").inner_text().strip()
                assert banner == texts["banner"], (name, banner)
                _readable(page, lang, name, [texts["open"]])
                page.locator("article.incident h3 a").first.click()
                page.wait_for_load_state("load")
                assert f"lang={lang}" in page.url, page.url
                page.screenshot(path=ARTIFACTS / f"{name}-incident.png", full_page=True)
                _readable(page, lang, f"{name}-incident", [texts["updates"]])
                assert problems == [], (name, problems)
                context.close()


def _collect(problems: list[str], message: ConsoleMessage) -> None:
    if _is_error(message):
        problems.append(message.text)


def _readable(page: Page, lang: str, name: str, texts: list[str]) -> None:
    facts = page.evaluate(
        """() => ({
            lang: document.documentElement.lang,
            scrollWidth: document.documentElement.scrollWidth,
            innerWidth: window.innerWidth,
        })"""
    )
    assert facts["lang"] == lang, (name, facts)
    assert facts["scrollWidth"] == facts["innerWidth"], (name, facts)
    for text in texts:
        assert page.get_by_text(text, exact=True).first.is_visible(), (name, text)
    other = page.locator("nav.languages a")
    assert other.count() == 1 and other.first.is_visible(), name
