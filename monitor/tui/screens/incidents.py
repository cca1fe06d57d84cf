"""Incidents, open first, with the timeline of the highlighted one; ``n`` adds a note to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from monitor.store import Incident, IncidentState, StoreError
from monitor.tui.formatting import duration, plain, timestamp
from monitor.tui.messages import StoreChanged
from monitor.tui.timeline import incidents_text
from monitor.tui.widgets.status import status_text

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp


class IncidentsScreen(Screen[None]):
    CSS_PATH = "lists.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="incidents.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.incidents: dict[str, Incident] = {}

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("Incidents", id="list-title")
        table: DataTable[Text | str] = DataTable(id="incidents-table", cursor_type="row")
        table.add_columns("#", "State", "Component", "Impact", "Opened", "Lasted", "Title")
        yield table
        with VerticalScroll(id="timeline-panel"):
            yield Static("", id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.reload()

    def on_store_changed(self, message: StoreChanged) -> None:
        self.reload()

    def selected_incident(self) -> Incident | None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        if not self.incidents or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.incidents.get(key or "")

    @work(exclusive=True, group="incidents")
    async def reload(self) -> None:
        try:
            incidents = await self.monitor.reader.incidents(limit=200, with_events=True)
        except StoreError as error:
            self.monitor.tell(f"Could not read the incidents: {type(error).__name__}", "error")
            return
        self.show(incidents)

    def show(self, incidents: list[Incident]) -> None:
        now, tz = self.monitor.clock.wall(), self.monitor.tz
        ordered = sorted(incidents, key=lambda i: (i.state is not IncidentState.OPEN, -i.opened_at))
        previous = self.selected_incident()
        self.incidents = {str(i.id): i for i in ordered}
        open_count = sum(1 for i in ordered if i.state is IncidentState.OPEN)
        title = Text("Incidents  ", style="bold")
        title.append(f"{open_count} open", style="bold red" if open_count else "green")
        title.append(f" · {len(ordered) - open_count} resolved", style="dim")
        self.query_one("#list-title", Static).update(title)
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        for incident in ordered:
            end = incident.resolved_at if incident.resolved_at is not None else now
            table.add_row(
                str(incident.id),
                Text("OPEN", style="bold red")
                if incident.state is IncidentState.OPEN
                else Text("resolved", style="green"),
                plain(incident.target + (f"/{incident.service}" if incident.service else "")),
                status_text(incident.impact),
                timestamp(incident.opened_at, tz),
                duration(end - incident.opened_at),
                plain(incident.title),
                key=str(incident.id),
            )
        if previous is not None and str(previous.id) in self.incidents:
            table.move_cursor(row=list(self.incidents).index(str(previous.id)), animate=False)
        self._show_timeline()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_timeline()

    def _show_timeline(self) -> None:
        incident = self.selected_incident()
        widget = self.query_one("#timeline", Static)
        if incident is None:
            widget.update(Text("No incidents recorded.", style="dim"))
            return
        widget.update(incidents_text([incident], self.monitor.tz, self.monitor.clock.wall()))
