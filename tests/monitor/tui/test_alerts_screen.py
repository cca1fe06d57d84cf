"""The alerts screen's acknowledge (``a``) and silence (``s``), and the shared actions under them
(:mod:`monitor.alert_actions`, also behind ``questcity alert ack|silence``), on a real SQLite
store: the ack and the silence are written as the signed-in engineer, and on the open incident's
timeline as internal events."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.widgets import DataTable, Input, Static

from monitor import alert_actions
from monitor.alert_actions import MAX_SILENCE, ActionError, parse_duration
from monitor.store import Alert, AlertState
from monitor.tui.app import MonitorApp
from monitor.tui.identity import Identity, Role
from monitor.tui.screens import AlertsScreen
from monitor.tui.screens.silence import SilenceModal
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW

SIZE = (160, 40)
ALICE = Identity("alice", Role.OPERATOR)


def cells(app: MonitorApp, row: int) -> list[str]:
    table: DataTable[object] = app.screen.query_one(DataTable)
    return [c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(row)]


async def firing(store: Store, rule: str) -> Alert:
    return next(a for a in await store.reader.alerts(active_only=True) if a.rule == rule)


async def database_incident_events(store: Store) -> list[tuple[str, str | None, bool, str]]:
    incident = await store.reader.open_incident_for("questcity-api", "database")
    assert incident is not None
    full = await store.reader.incident(incident.id)
    assert full is not None
    return [(e.kind, e.actor, e.public, e.text) for e in full.events]


async def test_a_acknowledges_the_selected_alert_as_the_engineer(
    make_app: AppFactory, store: Store
) -> None:
    app = make_app(identity=ALICE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")  # the alerts screen; the newest firing alert is selected
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert cells(app, 0)[2] == "pool_exhausted"
        await pilot.press("a")
        await settle(pilot)
        assert "acknowledged" in app.last_result
        assert "Logged on incident" in app.last_result
        assert cells(app, 0)[4] == "✓ alice 22:13"
        await pilot.press("a")  # a second ack keeps the first and logs nothing more
        await settle(pilot)
        assert "already acknowledged by alice" in app.last_result
        await pilot.press("escape")
        await settle(pilot)
        assert "✓ acked by alice" in str(app.screen.query_one("#alerts", Static).render())

    alert = await firing(store, "pool_exhausted")
    assert (alert.acked_by, alert.acked_at) == ("alice", NOW)
    acks = [e for e in await database_incident_events(store) if e[0] == "ack"]
    assert len(acks) == 1
    _, actor, public, text = acks[0]
    assert (actor, public) == ("alice", False)
    assert "pool_exhausted" in text


async def test_s_silences_the_component_for_a_duration_with_a_reason(
    make_app: AppFactory, store: Store
) -> None:
    app = make_app(identity=ALICE)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a", "s")
        await settle(pilot)
        modal = app.screen
        assert isinstance(modal, SilenceModal)
        modal.query_one("#silence-for", Input).value = "8d"
        await pilot.click("#silence")
        await settle(pilot)
        assert "at most 7d" in str(modal.query_one("#silence-problem", Static).render())
        assert await store.reader.silences(at=NOW) == []  # refused: nothing written
        modal.query_one("#silence-for", Input).value = "2h"
        reason = modal.query_one("#silence-reason", Input)
        reason.value = "failover drill"
        # Enter in the form this time: Textual ignores a click on a button still showing the
        # last click (its "-active" look, 0.2 s of wall time), which a fast run lands in.
        reason.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert "silenced for 2h" in app.last_result
        assert cells(app, 0)[5] == "silenced until 11-15 00:13 by alice"  # tomorrow

    [silence] = await store.reader.silences(at=NOW)
    assert silence.component == "questcity-api/database"
    assert (silence.starts_at, silence.ends_at) == (NOW, NOW + 7200)
    assert (silence.created_by, silence.reason) == ("alice", "failover drill")
    silences = [e for e in await database_incident_events(store) if e[0] == "silence"]
    assert [(actor, public) for _, actor, public, _ in silences] == [("alice", False)]
    assert "2h" in silences[0][3] and "failover drill" in silences[0][3]


async def test_a_monitor_self_alert_is_marked_as_about_the_monitor(
    make_app: AppFactory, store: Store
) -> None:
    await store.writer.fire_alert(
        "monitor_token_rejected", "questcity-eu", "", "401 from /detailed", NOW - 5
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        row = cells(app, 0)
        assert row[2] == "monitor_token_rejected"
        assert row[1] == "⚙ the monitor · questcity-eu · QuestCity EU"


# -- the shared actions (no TUI) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "1.5h", "-1h", "2 weeks", "8d", "10s", "1h; rm"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ActionError):
        parse_duration(text)


async def test_ack_of_a_resolved_or_unknown_alert_writes_nothing(store: Store) -> None:
    [resolved] = [a for a in await store.reader.alerts(active_only=False) if a.resolved_at]
    for alert_id in (resolved.id, 9999):
        with pytest.raises(ActionError):
            await alert_actions.ack(store.reader, store.writer, alert_id, by="bob", at=NOW)
    after = await store.reader.alert(resolved.id)
    assert after is not None and after.acked_by is None


async def test_silence_is_bounded_and_says_when_no_incident_is_open(store: Store) -> None:
    with pytest.raises(ActionError):
        await alert_actions.silence(
            store.reader,
            store.writer,
            "questcity-eu",
            MAX_SILENCE + 1,
            by="bob",
            reason=None,
            at=NOW,
        )
    with pytest.raises(ActionError):
        await alert_actions.silence(
            store.reader, store.writer, "not a key", 3600, by="bob", reason=None, at=NOW
        )
    outcome = await alert_actions.silence(
        store.reader, store.writer, "questcity-eu/s3", 3600, by=" bob\x1b[31m ", reason="", at=NOW
    )
    assert outcome.by == "bob [31m"  # one printable line: no escape reaches a terminal
    assert "has no open incident" in outcome.sentence()
    [silence] = await store.reader.silences(at=NOW + 10)
    assert silence.covers("questcity-eu", "s3", NOW + 3599)
    assert not silence.covers("questcity-eu", "s3", NOW + 3600)
    assert (await firing(store, "breaker_open")).state is AlertState.FIRING
