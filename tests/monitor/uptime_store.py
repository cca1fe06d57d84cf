"""One target with one S3 service in a fresh SQLite store, and the status page's uptime texts
read from it: the figures the TUI must agree with (tests/monitor/test_figures.py and
tests/monitor/tui/test_overview_cells.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    Component,
    HistoryReader,
    ServiceSample,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from statuspage.app import create_app

API = "questcity-api"

CONFIG = """
[storage]
url = "sqlite:///{path}"

[[targets]]
name = "questcity-api"
display_name = "QuestCity API"
url = "http://api.questcity.test"
services = {{ s3 = "Photos and avatars" }}
interval = 5
timeout = 2
"""
"""The monitor's config for the store (``{path}``: the database file)."""

UptimeStore = tuple[str, HistoryWriter, HistoryReader]


@asynccontextmanager
async def uptime_store(path: Path) -> AsyncIterator[UptimeStore]:
    """The store's URL, a writer and a read-only reader, the API and its S3 synced."""
    url = f"sqlite:///{path}"
    engine, reading = open_engine(url), open_engine(url, read_only=True)
    await create_schema(engine)
    writer = HistoryWriter(engine)
    await writer.sync_components(
        [
            Component(API, TARGET_COMPONENT, "QuestCity API", "Services", 0),
            Component(API, "s3", "Photos and avatars", "Services", 1),
        ]
    )
    try:
        yield url, writer, HistoryReader(reading)
    finally:
        await reading.dispose()
        await engine.dispose()


async def record(writer: HistoryWriter, at: float, s3: Status) -> None:
    """One check of the API at ``at``: S3 as given, the API degraded while S3 is not healthy."""
    overall = Status.HEALTHY if s3 is Status.HEALTHY else Status.DEGRADED
    sample = ServiceSample("s3", s3, 7.0, 0, "closed", {})
    await writer.record_check(CheckRecord(API, at, overall, 12.0, 200, None, (sample,)))


async def page_uptimes(url: str, now: float) -> dict[str, str]:
    """Each component's uptime text in components.json (summary.json says the same), checked
    against the HTML page's."""
    app = create_app(url, public_url="https://status.test", clock=lambda: now, revalidate_after=0)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://status.test"
        ) as client,
    ):
        summary = (await client.get("/api/v2/summary.json")).json()
        components = (await client.get("/api/v2/components.json")).json()
        html = (await client.get("/")).text
    assert summary["components"] == components["components"]
    members: list[dict[str, Any]] = [c for c in components["components"] if not c["group"]]
    found = {str(c["name"]): str(c["uptime"]["text"]) for c in members}
    for component in members:
        assert component["uptime"]["window"] == "90d"
        text = component["uptime"]["text"]
        # the HTML says the same ("… uptime", or "… uptime since DAY" for a young history)
        assert f'<span class="uptime">{text} uptime' in html
    return found
