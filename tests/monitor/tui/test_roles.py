"""Who is at the TUI (issue #14): a viewer reads and nothing more — reset, check now, note, ack
and silence are refused with a clear message, nothing is sent or written, and their key hints are
hidden; an operator's reset carries their name to the backend (``X-QuestCity-Actor``) and the
incident timeline."""

from __future__ import annotations

import httpx

from monitor.reset import ACTOR_HEADER, actor_header_value
from monitor.tui.app import MonitorApp
from monitor.tui.identity import (
    TAB_ROLE_ENV,
    TAB_USER_ENV,
    VIEWER_REFUSAL,
    Identity,
    Role,
    default_identity,
)
from monitor.tui.screens import AlertsScreen, ConfirmModal, MainScreen
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import ADMIN_ENV, ADMIN_TOKEN
from tests.monitor.tui.test_keys import API_DB, database_reset, select

SIZE = (160, 40)
VIEWER = Identity("victor", Role.VIEWER)


def shown_actions(app: MonitorApp) -> set[str]:
    """The actions whose key hints the footer shows."""
    return {
        active.binding.action
        for active in app.screen.active_bindings.values()
        if active.binding.show
    }


async def test_a_viewer_cannot_reset_check_or_note(make_app: AppFactory, store: Store) -> None:
    requests: list[httpx.Request] = []

    def backend(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    app = make_app(backend, identity=VIEWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert {"reset", "check", "note"}.isdisjoint(shown_actions(app))
        assert "alerts" in shown_actions(app)  # reading stays
        await select(app, API_DB)
        for key in ("r", "c", "n"):
            app.last_result = ""
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, MainScreen)  # no question, no note form
            assert VIEWER_REFUSAL in app.last_result
            assert "victor is signed in as a viewer" in app.last_result
        app.action_reset()  # the command palette's way in is refused too
        await settle(pilot)
    assert requests == []
    incident = await store.reader.open_incident_for("questcity-api", "database")
    assert incident is not None
    full = await store.reader.incident(incident.id)
    assert full is not None and {e.kind for e in full.events} <= {"opened", "state_change"}


async def test_a_viewer_cannot_ack_or_silence(make_app: AppFactory, store: Store) -> None:
    app = make_app(identity=VIEWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert {"ack", "silence"}.isdisjoint(shown_actions(app))
        for key, verb in (("a", "acknowledge an alert"), ("s", "silence alerts")):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, AlertsScreen)  # no silence form
            assert f"{VIEWER_REFUSAL} to {verb}" in app.last_result
    assert all(a.acked_by is None for a in await store.reader.alerts(active_only=False))
    assert await store.reader.silences(at=0) == [] == await store.reader.silences(at=2e9)


async def test_the_reset_carries_the_engineer_to_the_backend_and_the_timeline(
    make_app: AppFactory, store: Store
) -> None:
    requests: list[httpx.Request] = []
    app = make_app(database_reset(requests), identity=Identity("alice", Role.OPERATOR))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "reset" in shown_actions(app)
        await select(app, API_DB)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.click("#yes")
        await settle(pilot)
    [request] = requests
    assert request.headers[ACTOR_HEADER] == "alice"
    assert request.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    incident = await store.reader.open_incident_for("questcity-api", "database")
    assert incident is not None
    full = await store.reader.incident(incident.id)
    assert full is not None
    assert (full.events[-1].kind, full.events[-1].actor) == ("breaker_reset", "alice")


def test_the_actor_header_is_one_safe_line() -> None:
    assert actor_header_value("Alice Martin") == "Alice Martin"
    assert actor_header_value("Zoë") == "Zo%C3%AB"  # UTF-8, percent-encoded
    assert actor_header_value("eve\r\nX-Evil: 1") == "eveX-Evil: 1"  # no header injection
    assert actor_header_value("") == ""
    assert len(actor_header_value("x" * 500)) == 100


def test_a_browser_tab_is_its_signed_in_engineer() -> None:
    tab = default_identity(
        {TAB_USER_ENV: "victor", TAB_ROLE_ENV: "viewer", ADMIN_ENV: "t"}, "tester"
    )
    assert tab == Identity("victor", Role.VIEWER)  # the guard's name, not a local override
    unknown = default_identity({TAB_USER_ENV: "mallory", TAB_ROLE_ENV: "root"})
    assert unknown.role is Role.VIEWER
    terminal = default_identity({"QUESTCITY_OPERATOR": "ops-bob"})
    assert terminal == Identity("ops-bob", Role.ADMIN)
