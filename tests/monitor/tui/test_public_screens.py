"""Talking to the public from the TUI (issue #15): an operator opens, updates, resolves and
post-mortems incidents (taking an automatic one over says so) and schedules and cancels
maintenance windows through the dialogs, into the real store; a refusal is said in the dialog
and writes nothing; a viewer's keys write nothing; hostile titles read literally."""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Select, SelectionList, Static, TextArea

from monitor import public_actions
from monitor.store import (
    DECLARED_IMPACTS,
    Incident,
    IncidentOrigin,
    IncidentState,
    component_key,
)
from monitor.tui.app import MonitorApp
from monitor.tui.identity import VIEWER_REFUSAL, Identity, Role
from monitor.tui.screens import ConfirmModal, IncidentsScreen
from monitor.tui.screens.incident_writer import (
    OpenIncidentModal,
    PostmortemModal,
    UpdateIncidentModal,
)
from monitor.tui.screens.maintenance import MaintenanceScreen, ScheduleModal
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import HOUR, NOW

SIZE = (160, 60)
ALICE = Identity("alice", Role.OPERATOR)
VIEWER = Identity("victor", Role.VIEWER)
HOSTILE = "[bold red]Down[/] [@click=app.quit]quit[/] [/]"


def top(app: MonitorApp) -> Screen[object]:
    """The screen on top now (a call: mypy keeps no narrowing of ``app.screen`` across awaits)."""
    return app.screen


def shown(app: MonitorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def press_button(app: MonitorApp, pilot: object, button: str) -> None:
    app.screen.query_one(f"#{button}", Button).press()


async def written(store: Store, title: str) -> Incident | None:
    for incident in await store.reader.incidents(limit=200):
        if incident.title == title:
            return await store.reader.incident(incident.id)
    return None


def select_row(screen: IncidentsScreen | MaintenanceScreen, key: int) -> None:
    table: DataTable[Text | str] = screen.query_one(DataTable)
    rows = list(screen.incidents if isinstance(screen, IncidentsScreen) else screen.windows)
    table.move_cursor(row=rows.index(str(key)), animate=False)


async def test_an_operator_writes_incidents_and_takes_an_automatic_one_over(
    make_app: AppFactory, store: Store
) -> None:
    [automatic] = await store.reader.incidents(state=IncidentState.OPEN)
    assert automatic.origin is IncidentOrigin.AUTO and not automatic.taken_over
    app = make_app(identity=ALICE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i", "o")
        await settle(pilot)
        assert isinstance(top(app), OpenIncidentModal)
        dialog = app.screen
        dialog.query_one("#incident-title", Input).value = "Photos do not upload"
        dialog.query_one("#incident-message", Input).value = "Uploads fail; we are on it."
        dialog.query_one("#incident-impact", Select).value = "major"
        await press_button(app, pilot, "open")  # no component picked: refused in the dialog
        await settle(pilot)
        assert isinstance(top(app), OpenIncidentModal)
        assert shown(app, "#incident-problem").startswith("Name the components it concerns: ")
        assert await written(store, "Photos do not upload") is None
        picks: SelectionList[str] = dialog.query_one(SelectionList)
        assert picks.option_count == 6  # the store's catalogue
        picks.select("questcity-api/s3")
        picks.select("questcity-eu/s3")
        await press_button(app, pilot, "open")
        await settle(pilot)
        assert isinstance(top(app), IncidentsScreen)

        incident = await written(store, "Photos do not upload")
        assert incident is not None
        assert (incident.origin, incident.phase, incident.written_by) == (
            IncidentOrigin.WRITTEN,
            "investigating",
            "alice",
        )
        assert [component_key(c.target, c.service) for c in incident.components] == [
            "questcity-api/s3",
            "questcity-eu/s3",
        ]
        assert {c.status for c in incident.components} == {DECLARED_IMPACTS["major"]}
        assert "Uploads fail; we are on it." in [e.text for e in incident.events]
        screen = app.screen
        assert isinstance(screen, IncidentsScreen)
        assert screen.selected_incident() is not None
        assert screen.selected_incident().id == incident.id  # type: ignore[union-attr]

        await pilot.press("p")  # still open: no postmortem form, it says why
        await settle(pilot)
        assert isinstance(top(app), IncidentsScreen)
        assert "resolve it first" in app.last_result

        await pilot.press("u")
        await settle(pilot)
        assert isinstance(top(app), UpdateIncidentModal)
        assert not app.screen.query("#update-takeover")  # written by a person: no takeover
        app.screen.query_one("#update-status", Select).value = "resolved"
        app.screen.query_one("#update-message", Input).value = "Uploads work again."
        await pilot.press("enter")  # in the message field: posts
        await settle(pilot)
        assert isinstance(top(app), IncidentsScreen)
        resolved = await store.reader.incident(incident.id)
        assert resolved is not None
        assert (resolved.state, resolved.phase) == (IncidentState.RESOLVED, "resolved")

        await pilot.press("p")
        await settle(pilot)
        assert isinstance(top(app), PostmortemModal)
        app.screen.query_one(TextArea).text = "A full disk.\nWe added an alert on it."
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(top(app), IncidentsScreen)
        panel = shown(app, "#timeline")  # the whole postmortem once; its event, the first line
        assert "Postmortem" in panel and panel.count("We added an alert on it.") == 1

        await pilot.press("u")  # resolved: an update would re-open it, and says so
        await settle(pilot)
        assert "an update re-opens it" in shown(app, "#update-reopens")
        await pilot.press("escape")
        await settle(pilot)

        # The monitor's own open incident: an update takes it over, and says so first.
        select_row(screen, automatic.id)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(top(app), UpdateIncidentModal)
        assert "will NOT resolve it by itself" in shown(app, "#update-takeover")
        app.screen.query_one("#update-status", Select).value = "identified"
        await press_button(app, pilot, "post")
        await settle(pilot)
        assert isinstance(top(app), IncidentsScreen)
        assert "Taken over by alice" in shown(app, "#timeline")
    final = await store.reader.incident(incident.id)
    assert final is not None
    assert final.postmortem == "A full disk.\nWe added an alert on it."
    taken = await store.reader.incident(automatic.id)
    assert taken is not None
    assert (taken.written_by, taken.phase, taken.state) == ("alice", "identified", automatic.state)


async def test_a_viewer_writes_nothing(make_app: AppFactory, store: Store) -> None:
    before = await store.reader.incidents(limit=200, with_events=True)
    app = make_app(identity=VIEWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        for key, verb in (("o", "write incidents"), ("u", "write incidents"), ("p", "write")):
            app.last_result = ""
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(top(app), IncidentsScreen)  # no form
            assert VIEWER_REFUSAL in app.last_result and verb in app.last_result
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(top(app), MaintenanceScreen)
        for key in ("s", "x"):
            app.last_result = ""
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(top(app), MaintenanceScreen)
            assert f"{VIEWER_REFUSAL} to schedule or cancel maintenance" in app.last_result
    assert await store.reader.incidents(limit=200, with_events=True) == before
    assert await store.reader.maintenances(since=0, include_cancelled=True) == []


async def test_an_operator_schedules_and_cancels_windows(
    make_app: AppFactory, store: Store
) -> None:
    active_id = await public_actions.schedule_maintenance(
        store.reader,
        store.writer,
        title="Storage move",
        components=["questcity-eu"],
        starts_at=NOW - HOUR,
        ends_at=NOW + HOUR,
        by="bob",
        at=NOW - 2 * HOUR,
    )
    app = make_app(identity=ALICE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert "1 active · 0 upcoming" in shown(app, "#list-title")
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(top(app), ScheduleModal)
        dialog = app.screen
        dialog.query_one("#window-title", Input).value = "Database upgrade"
        dialog.query_one(SelectionList).select("questcity-api/database")
        dialog.query_one("#window-starts", Input).value = "+1h"
        dialog.query_one("#window-ends", Input).value = "2023-11-15T03:00"  # whose 03:00?
        await settle(pilot)
        assert "has no offset" in shown(app, "#window-preview")
        await press_button(app, pilot, "schedule")
        await settle(pilot)
        assert "has no offset" in shown(app, "#window-problem")
        assert len(await store.reader.maintenances(since=0, include_cancelled=True)) == 1

        dialog.query_one("#window-ends", Input).value = "+2h"  # after the start
        await settle(pilot)
        # NOW is 2023-11-14 22:13:20 UTC.
        assert shown(app, "#window-preview") == (
            "Starts 2023-11-14 23:13 UTC (in 1h 00m), ends 2023-11-15 01:13 UTC: lasts 2h 00m"
        )
        await press_button(app, pilot, "schedule")
        await settle(pilot)
        screen = top(app)
        assert isinstance(screen, MaintenanceScreen)
        assert "1 active · 1 upcoming" in shown(app, "#list-title")

        select_row(screen, active_id)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(top(app), ConfirmModal)
        assert "It is active" in shown(app, ".dialog-body")
        await pilot.press("n")  # No: nothing changes
        await settle(pilot)
        assert isinstance(top(app), MaintenanceScreen)
        untouched = await store.reader.maintenance(active_id)
        assert untouched is not None and untouched.cancelled_at is None
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(top(app), MaintenanceScreen)
        assert f"Maintenance #{active_id} cancelled" in app.last_result
    [window] = [
        w
        for w in await store.reader.maintenances(since=0, include_cancelled=True)
        if w.id != active_id
    ]
    assert (window.title, window.components, window.created_by) == (
        "Database upgrade",
        ("questcity-api/database",),
        "alice",
    )
    assert (window.starts_at, window.ends_at) == (NOW + HOUR, NOW + 3 * HOUR)
    cancelled = await store.reader.maintenance(active_id)
    assert cancelled is not None
    assert (cancelled.cancelled_at, cancelled.cancelled_by) == (NOW, "alice")


async def test_hostile_titles_read_literally(make_app: AppFactory, store: Store) -> None:
    incident_id = await public_actions.open_incident(
        store.reader,
        store.writer,
        title=HOSTILE,
        components=["questcity-api"],
        message=f"message {HOSTILE}",
        by="[b]mallory[/b]",
        at=NOW - 60,
    )
    await public_actions.schedule_maintenance(
        store.reader,
        store.writer,
        title=HOSTILE,
        components=["questcity-api"],
        starts_at=NOW + HOUR,
        ends_at=NOW + 2 * HOUR,
        message=f"message {HOSTILE}",
        by="[b]mallory[/b]",
        at=NOW - 60,
    )
    app = make_app(identity=ALICE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, IncidentsScreen)
        select_row(screen, incident_id)
        await settle(pilot)
        row = [_plain(c) for c in screen.query_one(DataTable).get_row(str(incident_id))]
        assert HOSTILE in row and "[b]mallory[/b]" in row
        assert f"message {HOSTILE}" in shown(app, "#timeline")
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(top(app), UpdateIncidentModal)
        assert shown(app, ".dialog-body") == HOSTILE
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(top(app), MaintenanceScreen)
        row = [_plain(c) for c in app.screen.query_one(DataTable).get_row_at(0)]
        assert HOSTILE in row and "[b]mallory[/b]" in row
        assert f"message {HOSTILE}" in shown(app, "#window-detail")
        assert app.is_running and app.return_code is None


def _plain(cell: object) -> str:
    if isinstance(cell, str):
        assert "[" not in cell, f"a str cell is read as markup: {cell!r}"
    return cell.plain if isinstance(cell, Text) else str(cell)
