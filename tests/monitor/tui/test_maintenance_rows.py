"""Maintenance windows on the main screen (issue #15): a component an active window covers reads
``maintenance`` in the table (as the status page shows it), its detail names the window and
still shows the measured status; once the window ends the measured status is back. A viewer's
READ-ONLY line says that incidents and maintenance are an operator's to write."""

from __future__ import annotations

from typing import cast

from textual.widgets import Static

from monitor.store import Maintenance
from monitor.tui.app import MonitorApp
from monitor.tui.data import OverviewLoader
from monitor.tui.identity import Identity, Role
from monitor.tui.screens import DetailScreen
from monitor.tui.widgets import StatusWord
from monitor.tui.widgets.components import COMPACT, ComponentsTable
from monitor.tui.widgets.status import maintenance_text
from shared.resilience.testing import FakeClock
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW

SIZE = (160, 48)
API_DB = "questcity-api::database"
API_S3 = "questcity-api::s3"
EU_DB = "questcity-eu::database"
TITLE = "Database upgrade [bold]now[/]"  # a person's title, with markup that must read literally


def table(app: MonitorApp) -> ComponentsTable:
    return app.screen.query_one(ComponentsTable)


async def schedule(store: Store, *keys: str, ends: float = NOW + 600) -> int:
    return await store.writer.schedule_maintenance(
        TITLE, list(keys), NOW - 600, ends, None, "ops", NOW - 3600
    )


async def test_a_covered_component_reads_maintenance_until_the_window_ends(
    make_app: AppFactory, store: Store
) -> None:
    await schedule(store, "questcity-api/database", "questcity-eu")  # a target covers its services
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = table(app)
        assert components.cell_text(API_DB, "status") == "◆ maintenance"  # measured: unhealthy
        assert components.cell_text(EU_DB, "status") == "◆ maintenance"
        assert components.cell_text("questcity-eu::", "status") == "◆ maintenance"
        assert components.cell_text(API_S3, "status") == "● healthy"  # not covered

        components.move_cursor(row=components.keys.index(API_DB), animate=False)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        head = str(screen.query_one("#detail-since", Static).render())
        assert head.startswith(f"◆ maintenance “{TITLE}” until 22:23 · since")
        assert screen.query_one(StatusWord).status.value == "unhealthy"  # measured, as it is
        await pilot.press("escape")
        await settle(pilot)

        await cast(FakeClock, app.clock).advance(601)  # the window has ended
        app.refresh_now()
        await settle(pilot)
        components = table(app)
        assert components.cell_text(API_DB, "status") == "✖ unhealthy"
        assert components.cell_text(EU_DB, "status") != "◆ maintenance"


async def test_only_an_active_window_covers(store: Store) -> None:
    """An upcoming or cancelled window covers nothing; the filter finds the covered rows by the
    word; the compact layout's narrower cell holds it."""
    assert maintenance_text(compact=True).cell_len < COMPACT[1].width
    upcoming = await store.writer.schedule_maintenance(
        "Later", ["questcity-api"], NOW + 600, NOW + 1200, None, "ops", NOW - 60
    )
    cancelled = await schedule(store, "questcity-api/s3")
    await store.writer.cancel_maintenance(cancelled, "ops", NOW - 30)
    overview = await OverviewLoader(store.reader, store.config).load(NOW)
    assert all(row.maintenance is None for row in overview.rows), upcoming

    await schedule(store, "questcity-api/s3")
    overview = await OverviewLoader(store.reader, store.config).load(NOW)
    covered = {row.key: row.maintenance for row in overview.rows}
    window = covered[API_S3]
    assert isinstance(window, Maintenance) and window.title == TITLE
    assert covered[API_DB] is None
    rows = {row.key: row for row in overview.rows}
    assert rows[API_S3].matches("maint") and not rows[API_DB].matches("maint")  # the filter


async def test_a_viewer_is_told_incidents_and_maintenance_need_an_operator(
    make_app: AppFactory,
) -> None:
    app = make_app(identity=Identity("victor", Role.VIEWER))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        line = str(app.screen.query_one("#readonly", Static).render())
        assert "READ-ONLY" in line
        assert "incidents and maintenance windows" in line
        assert "operator" in line
