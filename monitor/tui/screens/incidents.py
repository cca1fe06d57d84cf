"""Incidents, open first, with the components each affects (each with its impact, in
:mod:`monitor.impact`'s words) and the timeline of the highlighted one; ``n`` adds a note."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from monitor.impact import Condition, Wording, describe
from monitor.store import Incident, IncidentState, StoreError, component_key
from monitor.tui.formatting import bounded, duration, plain, timestamp
from monitor.tui.messages import StoreChanged
from monitor.tui.screens.alerts import display_name
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
        table.add_columns(
            "#", "State", "Component", "Impact", "Opened", "Lasted", "Affects", "Title"
        )
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
            wording = self.wording(incident)
            table.add_row(
                str(incident.id),
                Text("OPEN", style="bold red")
                if incident.state is IncidentState.OPEN
                else Text("resolved", style="green"),
                plain(component_key(incident.target, incident.service)),
                _impact_cell(incident, wording),
                timestamp(incident.opened_at, tz),
                duration(end - incident.opened_at),
                plain(_affects(wording)),
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
        text = affected_text(self.wording(incident))
        text.append_text(incidents_text([incident], self.monitor.tz, self.monitor.clock.wall()))
        widget.update(text)

    def wording(self, incident: Incident) -> Wording | None:
        """The incident's affected components with their impact (None: an incident of an older
        monitor, which lists none)."""
        if not incident.components:
            return None
        config = self.monitor.config
        return describe(incident.components, lambda t, s: display_name(config, t, s))


AFFECTS_SHOWN = 3
"""Components named in the table's Affects cell; the timeline panel lists them all."""


def _impact_cell(incident: Incident, wording: Wording | None) -> Text:
    if wording is None or not wording.impact.known:
        return status_text(incident.impact)
    style = "bold red" if wording.impact.value >= Condition.PARTIAL.value else "yellow"
    if wording.impact is Condition.OPERATIONAL:
        style = "green"
    return Text(wording.impact.word, style=style)


def _affects(wording: Wording | None) -> str:
    if wording is None:
        return ""
    names = [bounded(a.name, 30) for a in wording.affected[:AFFECTS_SHOWN]]
    more = len(wording.affected) - AFFECTS_SHOWN
    return ", ".join(names) + (f" +{more}" if more > 0 else "")


def affected_text(wording: Wording | None) -> Text:
    """``Affects: Image storage (questcity-api/s3) — Partial outage`` one component a line,
    the cause first; nothing for an incident that lists none."""
    text = Text()
    if wording is None:
        return text
    text.append("Affects", style="bold")
    for affected in wording.affected:
        text.append("\n  • ")
        text.append(bounded(affected.name, 60))
        text.append(f" ({bounded(component_key(affected.target, affected.service), 80)})", "dim")
        text.append(f" — {affected.condition.word}")
    text.append("\n\n")
    return text
