"""Every alert, firing first: its component (key and name), rule, current summary, since when,
who acknowledged it and whether a silence keeps it from the notifiers. ``a`` acknowledges the
selected alert and ``s`` silences its component, as the engineer at the TUI (through
:mod:`monitor.alert_actions`, as ``questcity alert ack|silence`` do)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import tzinfo
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from monitor import alert_actions
from monitor.alert_actions import ActionError
from monitor.config import MonitorConfig
from monitor.store import Alert, AlertState, Silence, StoreError
from monitor.tui.formatting import DASH, bounded, clock_time, duration, plain
from monitor.tui.identity import Action
from monitor.tui.messages import StoreChanged
from monitor.tui.screens.silence import SilenceDraft, SilenceModal
from monitor.tui.summary import is_monitor_alert

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp

NAME_SHOWN = 40
"""Characters shown of a name from outside (an engineer's, a component's)."""


class AlertsScreen(Screen[None]):
    CSS_PATH = "lists.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "ack", "Acknowledge", id="alerts.ack"),
        Binding("s", "silence", "Silence component", id="alerts.silence"),
        # A viewer's a/s: hints hidden, the key says why nothing happens.
        Binding("a", "app.refuse('ack')", show=False, id="alerts.ack.refused"),
        Binding("s", "app.refuse('silence')", show=False, id="alerts.silence.refused"),
        Binding("escape", "app.pop_screen", "Back", id="alerts.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.alerts: dict[str, Alert] = {}

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("Alerts", id="list-title")
        table: DataTable[Text | str] = DataTable(id="alerts-table", cursor_type="row")
        table.add_columns("State", "Component", "Rule", "Since", "Ack", "Silence", "Summary")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.reload()

    def on_store_changed(self, message: StoreChanged) -> None:
        self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "ack":
            return self.monitor.identity.may(Action.ACK)
        if action == "silence":
            return self.monitor.identity.may(Action.SILENCE)
        return True

    def selected_alert(self) -> Alert | None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        if not self.alerts or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.alerts.get(key or "")

    @work(exclusive=True, group="alerts")
    async def reload(self) -> None:
        now = self.monitor.clock.wall()
        try:
            alerts = await self.monitor.reader.alerts(active_only=False, limit=200)
            silences = await self.monitor.reader.silences(at=now)
        except StoreError as error:
            self.monitor.tell(f"Could not read the alerts: {type(error).__name__}", "error")
            return
        self.show(alerts, silences)

    def show(self, alerts: list[Alert], silences: list[Silence]) -> None:
        now, tz = self.monitor.clock.wall(), self.monitor.tz
        ordered = sorted(alerts, key=lambda a: (a.state is not AlertState.FIRING, -a.started_at))
        previous = self.selected_alert()
        self.alerts = {str(a.id): a for a in ordered}
        firing = [a for a in ordered if a.state is AlertState.FIRING]
        title = Text("Alerts  ", style="bold")
        title.append(f"{len(firing)} firing", style="bold red" if firing else "green")
        title.append(f" · {len(ordered) - len(firing)} resolved (latest first)", style="dim")
        if self.monitor.identity.may(Action.ACK):
            title.append("   a: acknowledge · s: silence its component", style="dim")
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        for alert in ordered:
            silence = _covering(silences, alert, now)
            table.add_row(
                _state(alert),
                component_cell(self.monitor.config, alert),
                plain(alert.rule),
                _since(alert, now, tz),
                _acked(alert, now, tz),
                silence_cell(silence, now, tz) if alert.state is AlertState.FIRING else DASH,
                plain(alert.summary),
                key=str(alert.id),
            )
        self.query_one("#list-title", Static).update(title)
        if previous is not None and str(previous.id) in self.alerts:
            table.move_cursor(row=list(self.alerts).index(str(previous.id)), animate=False)

    # -- a: acknowledge ---------------------------------------------------------------------------

    def action_ack(self) -> None:
        if not self.monitor.permitted(Action.ACK):
            return
        alert = self.selected_alert()
        if alert is None:
            self.monitor.tell("No alert to acknowledge.", "warning")
        elif alert.state is not AlertState.FIRING:
            self.monitor.tell(f"Alert #{alert.id} is resolved: nothing to acknowledge.", "warning")
        else:
            self.run_ack(alert)

    @work(exclusive=True, group="alert-action")
    async def run_ack(self, alert: Alert) -> None:
        monitor = self.monitor
        await self._write(
            alert_actions.ack(
                monitor.reader, monitor.writer, alert.id, by=monitor.actor, at=monitor.clock.wall()
            ),
            refused="Not acknowledged",
            noun="ack",
        )

    # -- s: silence the component -----------------------------------------------------------------

    def action_silence(self) -> None:
        if not self.monitor.permitted(Action.SILENCE):
            return
        alert = self.selected_alert()
        if alert is None:
            self.monitor.tell("Select an alert first: s silences its component.", "warning")
            return
        name = display_name(self.monitor.config, alert.target, alert.service)

        def answered(draft: SilenceDraft | None) -> None:
            if draft is not None:
                self.run_silence(alert.component, draft)

        self.app.push_screen(SilenceModal(alert.component, name), answered)

    @work(exclusive=True, group="alert-action")
    async def run_silence(self, component: str, draft: SilenceDraft) -> None:
        monitor = self.monitor
        await self._write(
            alert_actions.silence(
                monitor.reader,
                monitor.writer,
                component,
                draft.seconds,
                by=monitor.actor,
                reason=draft.reason or None,
                at=monitor.clock.wall(),
            ),
            refused="Not silenced",
            noun="silence",
        )

    async def _write(
        self,
        action: Awaitable[alert_actions.AckOutcome | alert_actions.SilenceOutcome],
        *,
        refused: str,
        noun: str,
    ) -> None:
        """Await an ack or a silence and tell the engineer how it went (a refusal, a store that
        did not take it, or done: a warning when the incident's timeline missed it)."""
        monitor = self.monitor
        try:
            outcome = await action
        except ActionError as error:
            monitor.tell(f"{refused}: {error}.", "warning")
            return
        except StoreError as error:
            monitor.tell(f"The {noun} could not be written ({type(error).__name__}).", "error")
            return
        late = outcome.logged.error is not None
        monitor.tell(outcome.sentence(), "warning" if late else "information")
        monitor.refresh_now()


# -- cells ----------------------------------------------------------------------------------------


def display_name(config: MonitorConfig, target: str, service: str) -> str:
    """The component's name as people know it (the config's), else its key."""
    for configured in config.targets:
        if configured.name == target:
            return configured.service_title(service) if service else configured.title
    for check in config.checks:
        if check.name == target and not service:
            return check.title
    return target + (f"/{service}" if service else "")


def component_cell(config: MonitorConfig, alert: Alert) -> Text:
    """``questcity-api/s3 · Image storage``; a monitor self-alert says it is about the monitor."""
    text = Text()
    if is_monitor_alert(alert):
        text.append("⚙ the monitor · ", style="bold yellow")
    text.append(bounded(alert.component, NAME_SHOWN))
    name = display_name(config, alert.target, alert.service)
    if name != alert.component:
        text.append(f" · {bounded(name, NAME_SHOWN)}", style="dim")
    return text


def _state(alert: Alert) -> Text:
    if alert.state is not AlertState.FIRING:
        return Text("✔ resolved", style="green")
    return Text("● FIRING", style="bold red")


def _since(alert: Alert, now: float, tz: tzinfo) -> str:
    at = clock_time(alert.started_at, tz, now)
    end = alert.resolved_at if alert.resolved_at is not None else now
    lasted = duration(end - alert.started_at) if end >= alert.started_at else DASH
    return f"{at} ({lasted})" if alert.resolved_at is None else f"{at} (lasted {lasted})"


def _acked(alert: Alert, now: float, tz: tzinfo) -> Text | str:
    if alert.acked_by is None:
        return DASH
    at = alert.acked_at
    when = f" {clock_time(at, tz, now)}" if at is not None else ""
    return plain(f"✓ {bounded(alert.acked_by, NAME_SHOWN)}{when}", "green")


def _covering(silences: list[Silence], alert: Alert, now: float) -> Silence | None:
    found = [s for s in silences if s.covers(alert.target, alert.service, now)]
    return max(found, key=lambda s: s.ends_at) if found else None


def silence_cell(silence: Silence | None, now: float, tz: tzinfo) -> Text | str:
    """``silenced until 23:40 by bob``, or a dash."""
    if silence is None:
        return DASH
    until = clock_time(silence.ends_at, tz, now)
    return plain(f"silenced until {until} by {bounded(silence.created_by, NAME_SHOWN)}", "yellow")
