"""The incidents screen lists every component an incident affects, each with its impact in
:mod:`monitor.impact`'s words (issue #14: one incident per cause)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from monitor.store import IncidentComponent, Status
from monitor.tui.screens import IncidentsScreen
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW

SIZE = (180, 40)


async def test_an_incident_lists_its_components_with_their_impact(
    make_app: AppFactory, store: Store
) -> None:
    await store.writer.open_incident(
        "questcity-api",
        "s3",
        Status.UNHEALTHY,
        NOW - 3,
        "Partial outage: Image storage",
        components=(
            IncidentComponent("questcity-api", "s3", Status.UNHEALTHY),
            IncidentComponent("questcity-api", "", Status.DEGRADED),
        ),
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, IncidentsScreen)
        table: DataTable[object] = app.screen.query_one(DataTable)
        row = [c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(0)]
        assert row[2:4] == ["questcity-api/s3", "Partial outage"]
        assert row[6] == "Image storage, QuestCity API"
        timeline = str(app.screen.query_one("#timeline", Static).render())
        assert "Image storage (questcity-api/s3) — Partial outage" in timeline
        assert "QuestCity API (questcity-api) — Degraded performance" in timeline
