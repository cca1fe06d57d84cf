"""Every alert, firing first: rule, component, since when, for how long."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from monitor.store import Alert, AlertState, StoreError
from monitor.tui.formatting import DASH, duration, plain, timestamp
from monitor.tui.messages import StoreChanged

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp


class AlertsScreen(Screen[None]):
    CSS_PATH = "lists.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="alerts.back"),
    ]

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("Alerts", id="list-title")
        table: DataTable[Text | str] = DataTable(id="alerts-table", cursor_type="row")
        table.add_columns("State", "Rule", "Component", "Started", "For", "Summary")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.reload()

    def on_store_changed(self, message: StoreChanged) -> None:
        self.reload()

    @work(exclusive=True, group="alerts")
    async def reload(self) -> None:
        try:
            alerts = await self.monitor.reader.alerts(active_only=False, limit=200)
        except StoreError as error:
            self.monitor.tell(f"Could not read the alerts: {type(error).__name__}", "error")
            return
        self.show(alerts)

    def show(self, alerts: list[Alert]) -> None:
        now, tz = self.monitor.clock.wall(), self.monitor.tz
        firing = [a for a in alerts if a.state is AlertState.FIRING]
        title = Text("Alerts  ", style="bold")
        title.append(f"{len(firing)} firing", style="bold red" if firing else "green")
        title.append(f" · {len(alerts) - len(firing)} resolved (latest first)", style="dim")
        self.query_one("#list-title", Static).update(title)
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        for alert in sorted(
            alerts, key=lambda a: (a.state is not AlertState.FIRING, -a.started_at)
        ):
            end = alert.resolved_at if alert.resolved_at is not None else now
            state = (
                Text("● FIRING", style="bold red")
                if alert.state is AlertState.FIRING
                else Text("✔ resolved", style="green")
            )
            table.add_row(
                state,
                plain(alert.rule),
                plain(alert.target + (f"/{alert.service}" if alert.service else "")),
                timestamp(alert.started_at, tz),
                duration(end - alert.started_at) if end >= alert.started_at else DASH,
                plain(alert.summary),
                key=str(alert.id),
            )
