"""Outside text is plain text on every screen of the TUI (#11).

A target reports services by name; errors, incident titles, notes and alert summaries come from
targets and operators. On main, a service named ``[/]`` crashed the incidents and alerts screens
(Rich markup parsed from a ``str`` cell: ``MarkupError``), and ``[@click=app.quit]`` became a
clickable action. Here a store full of such names is shown on every screen: the app keeps
running, each name reads literally, and clicking it does nothing.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Label

from monitor.store import CheckRecord, IncidentEvent, ServiceSample, Status
from monitor.tui.app import MonitorApp
from monitor.tui.screens import (
    AlertsScreen,
    ConfirmModal,
    DetailScreen,
    HelpScreen,
    IncidentsScreen,
    NoteModal,
)
from monitor.tui.widgets.components import ComponentsTable
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW

SIZE = (200, 60)
CLOSE = "[/]"
CLICK = "[@click=app.quit]"
BOLD = "[bold red]x"
LINK = "[link=http://evil]x[/link]"
HOSTILE = (CLOSE, CLICK, BOLD, LINK)
TARGET = "questcity-api"


@pytest.fixture
async def hostile(store: Store) -> Store:
    """The fixed history, plus a check with a service under each hostile name (its error,
    breaker state and details hostile too), an open incident and a firing alert on each, and
    hostile notes."""
    samples = tuple(
        ServiceSample(
            name,
            Status.UNHEALTHY,
            None,
            3,
            "open",
            {"last_error": f"{name} failed: {CLICK}", "critical": False},
        )
        for name in HOSTILE
    )
    await store.writer.record_check(
        CheckRecord(TARGET, NOW - 1, Status.UNHEALTHY, 9.0, 503, f"{CLOSE} {CLICK}", samples)
    )
    for n, name in enumerate(HOSTILE):
        incident = await store.writer.open_incident(
            TARGET, name, Status.UNHEALTHY, NOW - 100 + n, f"{name} is down {CLOSE}"
        )
        await store.writer.add_event(
            incident,
            IncidentEvent(
                at=NOW - 50, kind="note", status=None, public=False, text=f"note {name} {CLICK}"
            ),
        )
        await store.writer.fire_alert(
            f"rule {name}", TARGET, name, f"{name} summary {LINK}", NOW - 30 + n
        )
    return store


def current(app: MonitorApp) -> Screen[object]:
    """The screen on top now (a call, so that mypy does not carry an earlier narrowing over)."""
    return app.screen


def running(app: MonitorApp) -> None:
    assert app.is_running, "the app stopped (a crash, or an action parsed from a name)"
    assert app.return_code is None


def table_text(app: MonitorApp) -> set[str]:
    """Every cell of the screen's tables, as it reads."""
    texts: set[str] = set()
    screen = app.screen
    for table in screen.query(DataTable):
        for row in range(table.row_count):
            for cell in table.get_row_at(row):
                if isinstance(cell, str):
                    assert "[" not in cell, f"a str cell is read as markup: {cell!r}"
                texts.add(cell.plain if isinstance(cell, Text) else str(cell))
    return texts


async def click_hostile_rows(app: MonitorApp, pilot: Pilot[None]) -> None:
    """Click along every table row that shows ``[@click=app.quit]``: had the name been parsed
    as markup, a click on it would run the action and end the app."""
    screen = app.screen
    for table in screen.query(DataTable):
        for row in range(table.row_count):
            cells = table.get_row_at(row)
            if not any(CLICK in (c.plain if isinstance(c, Text) else str(c)) for c in cells):
                continue
            table.move_cursor(row=row, animate=False)
            await settle(pilot)
            y = table.region.y + 1 + row - int(table.scroll_y)  # below the header row
            x = table.region.x
            for column, cell in zip(table.ordered_columns, cells, strict=True):
                width = column.get_render_width(table)
                if CLICK in (cell.plain if isinstance(cell, Text) else str(cell)):
                    await pilot.click(offset=(x + width // 2, y))
                x += width
                while app.screen is not screen:  # a click on a selected row opens its detail
                    await pilot.press("escape")
                    await settle(pilot)
    await settle(pilot)


@pytest.mark.timeout(90)  # on main the app dies mid-test and the pilot waits for ever
async def test_every_screen_shows_hostile_names_literally(
    hostile: Store, make_app: AppFactory
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = app.screen.query_one(ComponentsTable)
        for name in HOSTILE:
            key = f"{TARGET}::{name}"
            assert key in components.keys
            assert components.cell_text(key, "component").strip() == name
            # Literal, and cut between words to its column (the whole error is on the detail).
            error, full = components.cell_text(key, "error"), f"{name} failed: {CLICK}"
            kept = error.removesuffix("…")
            assert error == full or full.startswith((kept + " ", kept + ": "))
        await click_hostile_rows(app, pilot)
        running(app)

        for name in HOSTILE:  # the detail screen of each hostile service
            components = app.screen.query_one(ComponentsTable)
            components.move_cursor(row=components.keys.index(f"{TARGET}::{name}"), animate=False)
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(current(app), DetailScreen)
            heading = app.screen.query_one("#detail-title", Label)
            assert str(heading.render()).endswith(f"› {name}")
            assert f"{name} is down {CLOSE}" in str(app.screen.query_one("#incidents").render())
            running(app)

            await pilot.press("r")  # the confirm modal names the service
            await settle(pilot)
            assert isinstance(current(app), ConfirmModal)
            assert name in str(app.screen.query_one(".dialog-body").render())
            await pilot.press("n")
            await settle(pilot)
            assert isinstance(current(app), DetailScreen)
            await pilot.press("escape")
            await settle(pilot)

        await pilot.press("i")
        await settle(pilot)
        assert isinstance(current(app), IncidentsScreen)
        cells = table_text(app)
        for name in HOSTILE:
            assert f"{TARGET}/{name}" in cells
            assert f"{name} is down {CLOSE}" in cells
        for name in HOSTILE:  # each timeline, with its note
            screen = app.screen
            assert isinstance(screen, IncidentsScreen)
            incident = next(i for i in screen.incidents.values() if i.service == name)
            table = screen.query_one(DataTable)
            table.move_cursor(row=list(screen.incidents).index(str(incident.id)), animate=False)
            await settle(pilot)
            assert f"note {name} {CLICK}" in str(screen.query_one("#timeline").render())
            await pilot.press("n")
            await settle(pilot)
            assert isinstance(current(app), NoteModal)
            assert f"{name} is down {CLOSE}" in str(app.screen.query_one(".dialog-body").render())
            await pilot.press("escape")
            await settle(pilot)
        await click_hostile_rows(app, pilot)
        running(app)
        await pilot.press("escape")
        await settle(pilot)

        await pilot.press("a")
        await settle(pilot)
        assert isinstance(current(app), AlertsScreen)
        cells = table_text(app)
        for name in HOSTILE:
            assert {f"rule {name}", f"{name} summary {LINK}"} <= cells
            # The component cell is its key, then its display name: both literal.
            assert any(cell.startswith(f"{TARGET}/{name} · ") for cell in cells)
        await click_hostile_rows(app, pilot)
        running(app)
        await pilot.press("escape")
        await settle(pilot)

        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(current(app), HelpScreen)
        await pilot.press("escape")
        await settle(pilot)
        running(app)
        screenshot = app.export_screenshot()
    assert CLOSE in screenshot


@pytest.mark.timeout(90)
async def test_hostile_display_names_read_literally(store: Store, make_app: AppFactory) -> None:
    api, eu = store.config.targets
    store.config = replace(
        store.config,
        targets=(
            replace(api, display_name=CLICK, services={"database": LINK, "s3": BOLD}),
            replace(eu, display_name=CLOSE),
        ),
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = app.screen.query_one(ComponentsTable)
        assert components.cell_text(f"{TARGET}::", "component") == CLICK
        assert components.cell_text(f"{TARGET}::database", "component").strip() == LINK
        assert CLOSE in str(app.screen.query_one("#readonly").render())  # no admin token there
        components.move_cursor(row=components.keys.index("questcity-eu::s3"), animate=False)
        await pilot.press("r")  # refused: the notification names the target
        await settle(pilot)
        assert any(CLOSE in n.message for n in app._notifications)
        components.move_cursor(row=components.keys.index(f"{TARGET}::s3"), animate=False)
        await pilot.press("enter")
        await settle(pilot)
        assert str(app.screen.query_one("#detail-title", Label).render()) == f"{CLICK} › {BOLD}"
        await click_hostile_rows(app, pilot)
        running(app)
