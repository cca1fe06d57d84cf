"""The main screen: the banner, who leads, every target with its services and replicas, and the
alerts firing."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from monitor.store import Alert
from monitor.tui.data import ComponentRow, Overview
from monitor.tui.formatting import bounded, duration
from monitor.tui.identity import Action
from monitor.tui.messages import LeadershipChanged, StoreChanged
from monitor.tui.summary import is_monitor_alert, monitor_warnings, summarize
from monitor.tui.widgets.banner import Banner, LeaderLine, MonitorLine
from monitor.tui.widgets.components import COMPACT_BELOW, ComponentsTable, ReplicaHeading

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp

ALERTS_SHOWN = 4


class MainScreen(Screen[None]):
    CSS_PATH = "main.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="main.filter"),
        Binding("enter", "detail", "Detail", id="main.detail"),
        Binding("space", "toggle_replicas", "Replicas", id="main.replicas"),
        Binding("escape", "clear_filter", "Clear filter", id="main.clear_filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.overview: Overview | None = None
        self.needle = ""
        self._foldable = False
        self._alerts_shown: str | None = None

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Banner("Loading the store…", id="banner")
        yield LeaderLine("", id="leader")
        yield MonitorLine("", id="monitor-alerts")
        yield Static("", id="readonly")
        yield Static("", id="last-result")
        yield Input(
            placeholder="Filter: target, service, check, kind, status or breaker state", id="filter"
        )
        yield ComponentsTable(tz=self.monitor.tz, id="components")
        with Vertical(id="alerts-panel"):
            yield Static("", id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(LeaderLine).display = False
        self.query_one(MonitorLine).display = False
        self.query_one(ComponentsTable).focus()
        self.watch(self.monitor, "last_result", self._show_last_result)
        self._show_readonly()
        if self.monitor.overview is not None:
            self.show(self.monitor.overview)
        elif self.monitor.store_error is not None:
            self.show_store_error(self.monitor.store_error)

    # -- data ---------------------------------------------------------------------------------

    def on_store_changed(self, message: StoreChanged) -> None:
        self.show(message.overview)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_replicas":
            # In the footer only where there is something to fold.
            return self._foldable
        return True

    def on_leadership_changed(self, message: LeadershipChanged) -> None:
        self.query_one(LeaderLine).show(message.leadership, self.monitor.tz, message.now)

    def show(self, overview: Overview) -> None:
        self.overview = overview
        self.query_one(Banner).show(summarize(overview))
        self.query_one(LeaderLine).show(overview.leadership, self.monitor.tz, overview.now)
        self.query_one(MonitorLine).show(monitor_warnings(overview.alerts))
        if bool(overview.replicas) != self._foldable:
            self._foldable = bool(overview.replicas)
            self.refresh_bindings()  # the footer is recomposed: only when "space" comes or goes
        self._render_table()
        self._show_alerts(overview.alerts, overview.now)

    def show_store_error(self, message: str) -> None:
        self.query_one(Banner).show_error(message)

    def selected_row(self) -> ComponentRow | None:
        return self.query_one(ComponentsTable).selected()

    def _render_table(self) -> None:
        if self.overview is None:
            return
        compact = self.size.width < COMPACT_BELOW
        self.query_one(ComponentsTable).show(self.overview, self.needle, compact=compact)

    def on_resize(self, event: events.Resize) -> None:
        self._render_table()

    def _show_alerts(self, alerts: tuple[Alert, ...], now: float) -> None:
        text = Text()
        if not alerts:
            text.append("Alerts: ", style="bold")
            text.append("none firing", style="green")
        else:
            text.append(f"Alerts firing ({len(alerts)})", style="bold red")
            for alert in alerts[:ALERTS_SHOWN]:
                text.append("\n● ", style="bold red")
                text.append(f"{duration(now - alert.started_at):>6}  ", style="bold")
                if is_monitor_alert(alert):
                    text.append("⚙ the monitor · ", style="bold yellow")
                text.append(f"{bounded(alert.component, 60)}  ")
                if alert.acked_by is not None:
                    text.append(f"✓ acked by {bounded(alert.acked_by, 40)}  ", style="green")
                text.append(bounded(alert.summary, 300), style="")
            if len(alerts) > ALERTS_SHOWN:
                text.append(f"\n… {len(alerts) - ALERTS_SHOWN} more: press a", style="dim")
        if text.plain != self._alerts_shown:
            self._alerts_shown = text.plain
            self.query_one("#alerts", Static).update(text)

    def _show_readonly(self) -> None:
        widget = self.query_one("#readonly", Static)
        identity = self.monitor.identity
        if not identity.may(Action.RESET):
            widget.display = True
            widget.update(
                Text.assemble(
                    (" READ-ONLY ", "bold reverse"),
                    f" {identity.name} ({identity.role.value}): viewer accounts can only read; "
                    "ask an operator to reset, check, note, acknowledge or silence, and to "
                    "write incidents and maintenance windows for the status page",
                )
            )
            return
        missing = [t.title for t in self.monitor.config.targets if not self.monitor.can_reset(t)]
        widget.display = bool(missing)
        if missing:
            widget.update(
                Text.assemble(
                    (" READ-ONLY ", "bold reverse"),
                    f" {', '.join(missing)}: no admin token, breaker resets off (r says why)",
                )
            )

    def _show_last_result(self, message: str) -> None:
        widget = self.query_one("#last-result", Static)
        widget.display = bool(message)
        widget.update(Text(message))

    # -- keys ---------------------------------------------------------------------------------

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.display = False
        self.needle = ""
        self._render_table()
        self.query_one(ComponentsTable).focus()

    def action_toggle_replicas(self) -> None:
        if not self.query_one(ComponentsTable).toggle_replicas():
            self.notify("Only targets with several replicas fold (space).", timeout=3)

    def action_detail(self) -> None:
        if isinstance(self.query_one(ComponentsTable).selected_entry(), ReplicaHeading):
            self.action_toggle_replicas()
            return
        row = self.selected_row()
        if row is not None:
            self.monitor.open_detail(row)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value
        self._render_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.action_clear_filter()
            return
        self.query_one(ComponentsTable).focus()

    @on(DataTable.RowSelected, "#components")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()
