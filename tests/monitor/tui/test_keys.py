"""Every key of the TUI, driven through Textual's Pilot on the fixed history.

HTTP goes to an ``httpx.MockTransport``; the clock is frozen at ``NOW``. Nothing sleeps: each step
waits for the app's workers to finish (:func:`settle`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from rich.text import Text
from textual.command import CommandPalette
from textual.widgets import Checkbox, DataTable, Input, Static

from monitor.store import IncidentState, Status
from monitor.tui.app import FULL_RELOAD_EVERY, MonitorApp
from monitor.tui.screens import (
    AlertsScreen,
    ConfirmModal,
    DetailScreen,
    HelpScreen,
    IncidentsScreen,
    MainScreen,
    NoteModal,
)
from monitor.tui.widgets.banner import Banner
from monitor.tui.widgets.components import ComponentsTable
from shared.resilience.testing import FakeClock
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import ADMIN_TOKEN, NOW

SIZE = (160, 48)
API_DB = "questcity-api::database"
API_S3 = "questcity-api::s3"
EU_S3 = "questcity-eu::s3"


def table(app: MonitorApp) -> ComponentsTable:
    return app.screen.query_one(ComponentsTable)


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def static_text(app: MonitorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def select(app: MonitorApp, key: str) -> None:
    components = table(app)
    components.move_cursor(row=components.keys.index(key), animate=False)


async def open_incident_id(store: Store) -> int:
    incidents = await store.reader.incidents(state=IncidentState.OPEN)
    return next(i.id for i in incidents if i.service == "database")


# -- the main screen ---------------------------------------------------------------------------


async def test_main_screen_shows_every_target_and_service(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        components = table(app)
        assert components.keys == [
            "questcity-api::",
            API_DB,
            API_S3,
            "questcity-eu::",
            "questcity-eu::database",
            EU_S3,
        ]
        assert components.cell_text(API_DB, "status") == "✖ unhealthy"
        assert components.cell_text(API_DB, "breaker") == "OPEN"
        assert components.cell_text(API_DB, "fails") == "8"
        assert components.cell_text(EU_S3, "breaker") == "half-open"
        assert components.cell_text(API_S3, "response") == "22 ms"
        assert components.cell_text(API_S3, "since").endswith("(30d 0h)")
        banner = str(app.screen.query_one(Banner).render())
        assert "OUTAGE" in banner
        assert "2 alerts firing" in banner
        assert "database breaker open" in static_text(app, "#alerts")


async def test_live_refresh_shows_a_new_check_without_a_key(
    make_app: AppFactory, store: Store
) -> None:
    from monitor.store import CheckRecord, ServiceSample

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = app.overview
        app._tick()  # nothing new: the overview is not even reloaded
        await settle(pilot)
        assert app.overview is shown
        await store.writer.record_check(
            CheckRecord(
                "questcity-api",
                NOW - 1,
                Status.HEALTHY,
                9.0,
                200,
                None,
                (
                    ServiceSample("database", Status.HEALTHY, 3.0, 0, "closed"),
                    ServiceSample("s3", Status.HEALTHY, 20.0, 0, "closed"),
                ),
            )
        )
        app._tick()
        await settle(pilot)
        assert app.overview is not shown
        assert table(app).cell_text(API_DB, "status") == "● healthy"
        assert table(app).cell_text(API_DB, "breaker") == "closed"


async def test_figures_are_reloaded_now_and_then_without_a_change(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = app.overview
        assert isinstance(app.clock, FakeClock)
        await app.clock.advance(FULL_RELOAD_EVERY)
        app._tick()  # no new check (a dead daemon), but "since" durations move on
        await settle(pilot)
        assert app.overview is not shown
        assert app.overview is not None
        assert app.overview.now == NOW + FULL_RELOAD_EVERY
        banner = str(app.screen.query_one(Banner).render())
        assert "no recent check of QuestCity API, QuestCity EU: is the daemon running?" in banner


async def test_an_unreadable_store_is_explained_not_a_traceback(
    make_app: AppFactory, store: Store
) -> None:
    from monitor.store import HistoryReader, open_engine

    empty = open_engine(f"sqlite:///{store.path.parent / 'empty.db'}", read_only=True)
    app = make_app()
    app.reader = HistoryReader(empty)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            banner = str(app.screen.query_one(Banner).render())
            assert "STORE UNAVAILABLE" in banner
            assert "no tables yet" in banner
    finally:
        await empty.dispose()


# -- r: reset ----------------------------------------------------------------------------------


def database_reset(
    requests: list[httpx.Request] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """A backend whose database breaker resets (open → closed); its requests kept in
    ``requests``."""

    def backend(request: httpx.Request) -> httpx.Response:
        if requests is not None:
            requests.append(request)
        return httpx.Response(
            200, json={"service": "database", "state": "closed", "previous_state": "open"}
        )

    return backend


async def test_reset_posts_with_the_admin_token_and_logs_the_reset(
    make_app: AppFactory, store: Store
) -> None:
    requests: list[httpx.Request] = []
    app = make_app(database_reset(requests))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("r")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert modal.question.startswith("Reset database on 1 replica of QuestCity API?")
        assert "open now" in modal.question
        assert "api.questcity.test:80" in modal.question
        assert requests == []  # nothing before the answer
        await pilot.click("#yes")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)

        [request] = requests
        assert request.method == "POST"
        assert request.url.path == "/api/v1/health/services/database/reset"
        assert request.url.host == "api.questcity.test"
        assert request.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"

        assert "open → closed" in app.last_result
        assert table(app).cell_text(API_DB, "breaker") == "closed ↺"

    incident = await store.reader.incident(await open_incident_id(store))
    assert incident is not None
    reset = incident.events[-1]
    assert reset.kind == "breaker_reset"
    assert reset.actor == "tester"
    assert reset.at == NOW
    assert "was open" in reset.text
    assert not reset.public


async def test_reset_answered_no_sends_nothing(make_app: AppFactory) -> None:
    app = make_app()  # any request fails the test
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("enter")  # "No" has the focus
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert table(app).cell_text(API_DB, "breaker") == "OPEN"


async def test_reset_without_an_admin_token_explains_how_to_set_one(
    make_app: AppFactory,
) -> None:
    app = make_app(environ={})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)  # no modal, no request
        assert "$QC_TEST_ADMIN_TOKEN is not set" in app.last_result
        assert "questcity token --role admin" in app.last_result

        await select(app, EU_S3)  # this target names no admin_token_env at all
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Add admin_token_env" in app.last_result
        assert "READ-ONLY" in static_text(app, "#readonly")


async def test_reset_of_a_target_row_points_at_the_services(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")  # the cursor starts on the QuestCity API row
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Breakers belong to services" in app.last_result


def _refused(status: int) -> httpx.Response:
    return httpx.Response(status, json={"error": "forbidden", "message": "no"})


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (lambda request: _refused(401), "refused the token (401"),
        (lambda request: _refused(403), "needs the admin role"),
        (lambda request: _refused(404), "no breaker called 'database'"),
        (lambda request: httpx.Response(500, json={"message": "boom"}), "answered 500: boom"),
        (_unreachable, "could not be reached (connection refused)"),
    ],
    ids=["401", "403", "404", "500", "network"],
)
async def test_reset_failures_are_explained(
    make_app: AppFactory, store: Store, answer: object, said: str
) -> None:
    app = make_app(answer)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("r", "y")
        await settle(pilot)
        assert said in app.last_result
        assert "Traceback" not in app.last_result
        assert table(app).cell_text(API_DB, "breaker") == "OPEN"
    incident = await store.reader.incident(await open_incident_id(store))
    assert incident is not None
    assert all(event.kind != "breaker_reset" for event in incident.events)


# -- c: check now ------------------------------------------------------------------------------


async def test_check_now_probes_the_target_and_writes_the_check(
    make_app: AppFactory, store: Store
) -> None:
    seen: list[httpx.Request] = []
    breaker = {"name": "database", "state": "closed", "total_calls": 5}

    def backend(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.url.path == "/api/v1/health/detailed"
        return httpx.Response(
            200,
            json={
                "status": "healthy",
                "checks": {
                    "database": {
                        "status": "healthy",
                        "response_time_ms": 3.5,
                        "consecutive_failures": 0,
                        "circuit_breaker": breaker,
                    },
                    "s3": {"status": "healthy", "response_time_ms": 18.0},
                },
            },
        )

    app = make_app(backend, environ={"QC_TEST_OPERATOR_TOKEN": "operator-secret"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("c")
        await settle(pilot)
        assert [r.headers["authorization"] for r in seen] == ["Bearer operator-secret"]
        assert "Checked QuestCity API: healthy" in app.last_result
        assert table(app).cell_text(API_DB, "status") == "● healthy"
        assert table(app).cell_text(API_DB, "breaker") == "closed"
    latest = await store.reader.latest("questcity-api")
    assert latest is not None
    assert latest.record.at == NOW
    assert latest.record.status is Status.HEALTHY
    assert latest.record.manual  # never in roll-ups or the public latency chart
    assert json.dumps(latest.record.services[0].details["circuit_breaker"]) == json.dumps(breaker)


async def test_check_now_of_a_dead_target_is_data_not_a_crash(
    make_app: AppFactory, store: Store
) -> None:
    app = make_app(_unreachable)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert "unreachable" in app.last_result
        assert "connection refused" in app.last_result
        assert table(app).cell_text("questcity-api::", "status") == "✖ unreachable"
    latest = await store.reader.latest("questcity-api")
    assert latest is not None
    assert latest.record.error == "connection refused"


# -- / filter ----------------------------------------------------------------------------------


async def test_filter_narrows_the_table_and_escape_clears_it(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        field = app.screen.query_one("#filter", Input)
        assert field.display and field.has_focus
        await pilot.press(*"unhealthy")
        await settle(pilot)
        assert table(app).keys == ["questcity-api::", API_DB]
        await pilot.press("enter")  # back to the table, filter kept
        assert table(app).has_focus
        assert table(app).keys == ["questcity-api::", API_DB]
        await pilot.press("escape")
        await settle(pilot)
        assert len(table(app).keys) == 6
        assert not field.display


async def test_filter_by_target_keeps_its_services(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"eu")
        await settle(pilot)
        assert table(app).keys == ["questcity-eu::", "questcity-eu::database", EU_S3]


async def test_filter_by_breaker_state(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"open")  # open and half_open breakers
        await settle(pilot)
        assert table(app).keys == ["questcity-api::", API_DB, "questcity-eu::", EU_S3]


# -- enter, esc: detail ------------------------------------------------------------------------


async def test_enter_opens_the_detail_and_escape_goes_back(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        assert screen.detail is not None
        assert screen.detail.breaker["rejected_calls"] == 3
        assert screen.detail.pool["waiting"] == 12
        assert "rejected calls" in static_text(app, "#breaker")
        assert "checked out" in static_text(app, "#pool")
        assert "#" in static_text(app, "#incidents")
        assert "Database is unhealthy" in static_text(app, "#incidents")
        assert len(screen.detail.hours) == 24
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert table(app).selected() is not None
        assert table(app).selected().key == API_DB  # type: ignore[union-attr]


async def test_reset_from_the_detail_screen(make_app: AppFactory) -> None:
    app = make_app(database_reset())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("enter", "r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert "closed ↺" in static_text(app, "#breaker")


# -- a, i: alerts and incidents ------------------------------------------------------------------


async def test_a_lists_alerts_firing_first(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        alerts: DataTable[object] = screen.query_one(DataTable)
        rows = [[_plain(cell) for cell in alerts.get_row_at(n)] for n in range(alerts.row_count)]
        assert len(rows) == 3
        assert [row[0] for row in rows] == ["● FIRING", "● FIRING", "✔ resolved"]
        assert rows[0][2] == "pool_exhausted"
        assert rows[0][1] == "questcity-api/database · Database"
        assert "2 firing" in static_text(app, "#list-title")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


async def test_i_lists_incidents_with_the_timeline(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, IncidentsScreen)
        selected = screen.selected_incident()
        assert selected is not None
        assert selected.state is IncidentState.OPEN
        timeline = static_text(app, "#timeline")
        assert "Database is unhealthy" in timeline
        assert "circuit breaker opened" in timeline
        await pilot.press("down")
        await settle(pilot)
        assert "alice: S3 endpoint slow" in static_text(app, "#timeline")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


# -- n: note -----------------------------------------------------------------------------------


async def test_n_adds_a_public_note_to_the_open_incident(
    make_app: AppFactory, store: Store
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("n")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, NoteModal)
        assert modal.incident.title == "Database is unhealthy"
        await pilot.press(*"Failing over to the replica")
        await pilot.click("#note-public")
        assert modal.query_one(Checkbox).value
        await pilot.click("#add")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "public" in app.last_result
    incident = await store.reader.incident(await open_incident_id(store))
    assert incident is not None
    note = incident.events[-1]
    assert (note.kind, note.text, note.public, note.actor, note.at) == (
        "note",
        "Failing over to the replica",
        True,
        "tester",
        NOW,
    )


async def test_n_internal_note_from_the_incidents_screen(
    make_app: AppFactory, store: Store
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, NoteModal)
        await pilot.press("enter")  # empty: refused, the modal stays
        assert isinstance(app.screen, NoteModal)
        assert "Type the note first" in static_text(app, "#note-problem")
        await pilot.press(*"Paged the DBA", "enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentsScreen)
        assert "Paged the DBA" in static_text(app, "#timeline")
    incident = await store.reader.incident(await open_incident_id(store))
    assert incident is not None
    assert (incident.events[-1].text, incident.events[-1].public) == ("Paged the DBA", False)


async def test_n_without_an_open_incident_says_so(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_S3)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "No open incident for Image storage" in app.last_result


async def test_note_can_be_cancelled(make_app: AppFactory, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("n", *"never mind", "escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
    incident = await store.reader.incident(await open_incident_id(store))
    assert incident is not None
    assert all(event.kind != "note" for event in incident.events)


# -- ?, F1, the command palette, q ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["question_mark", "f1"])
async def test_help(make_app: AppFactory, key: str) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_command_palette_runs_an_action(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Incidents")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentsScreen)


async def test_q_quits(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


def test_bindings_have_ids() -> None:
    from textual.binding import Binding

    screens = (MonitorApp, MainScreen, DetailScreen, AlertsScreen, IncidentsScreen, HelpScreen)
    for owner in (*screens, ConfirmModal, NoteModal):
        for binding in owner.BINDINGS:
            assert isinstance(binding, Binding)
            assert binding.id, f"{owner.__name__}: {binding.key} has no id"
