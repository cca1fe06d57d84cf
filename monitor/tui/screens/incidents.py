"""Incidents, open first, with the components each affects (each with its impact, in
:mod:`monitor.impact`'s words) and the timeline of the highlighted one; ``n`` adds a note.
Written for the public (issue #15, :mod:`monitor.tui.screens.incident_writer`): ``o`` opens an
incident, ``u`` posts an update (taking an automatic one over), ``p`` its postmortem."""

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
from monitor.public_actions import origin
from monitor.store import Incident, IncidentOrigin, IncidentState, StoreError, component_key
from monitor.tui.formatting import bounded, duration, plain, timestamp
from monitor.tui.identity import Action
from monitor.tui.messages import StoreChanged
from monitor.tui.screens.alerts import display_name
from monitor.tui.screens.incident_writer import (
    OpenIncidentModal,
    PostmortemModal,
    UpdateIncidentModal,
)
from monitor.tui.screens.public import NAME_SHOWN, long_text
from monitor.tui.timeline import incidents_text
from monitor.tui.widgets.status import status_text

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp


class IncidentsScreen(Screen[None]):
    CSS_PATH = "lists.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_incident", "Open incident", id="incidents.open"),
        Binding("u", "update_incident", "Update", id="incidents.update"),
        Binding("p", "postmortem", "Postmortem", id="incidents.postmortem"),
        # A viewer's o/u/p: hints hidden, the key says why nothing happens.
        Binding("o", "app.refuse('incident')", show=False, id="incidents.open.refused"),
        Binding("u", "app.refuse('incident')", show=False, id="incidents.update.refused"),
        Binding("p", "app.refuse('incident')", show=False, id="incidents.postmortem.refused"),
        Binding("escape", "app.pop_screen", "Back", id="incidents.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.incidents: dict[str, Incident] = {}
        self._focus_id: int | None = None
        """The incident to highlight at the next reload (one just opened here)."""

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("Incidents", id="list-title")
        table: DataTable[Text | str] = DataTable(id="incidents-table", cursor_type="row")
        table.add_columns(
            "#", "State", "Component", "Impact", "Opened", "Lasted", "Affects", "Title", "By"
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open_incident", "update_incident", "postmortem"):
            return self.monitor.identity.may(Action.INCIDENT)
        return True

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
                _state_cell(incident),
                plain(component_key(incident.target, incident.service)),
                _impact_cell(incident, wording),
                timestamp(incident.opened_at, tz),
                duration(end - incident.opened_at),
                plain(_affects(wording)),
                plain(bounded(incident.title, 200)),
                plain(_by(incident)),
                key=str(incident.id),
            )
        wanted = self._focus_id if self._focus_id is not None else (previous and previous.id)
        self._focus_id = None
        if wanted is not None and str(wanted) in self.incidents:
            table.move_cursor(row=list(self.incidents).index(str(wanted)), animate=False)
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
        text.append_text(written_text(incident))
        text.append_text(incidents_text([incident], self.monitor.tz, self.monitor.clock.wall()))
        if incident.postmortem:
            text.append("\n\nPostmortem", style="bold")
            if incident.postmortem_at is not None:
                text.append(f"  {timestamp(incident.postmortem_at, self.monitor.tz)}", "dim")
            text.append("\n")
            text.append(long_text(incident.postmortem))
        widget.update(text)

    def wording(self, incident: Incident) -> Wording | None:
        """The incident's affected components with their impact (None: an incident of an older
        monitor, which lists none)."""
        if not incident.components:
            return None
        config = self.monitor.config
        return describe(incident.components, lambda t, s: display_name(config, t, s))

    # -- o, u, p: written for the public ------------------------------------------------------

    def action_open_incident(self) -> None:
        if not self.monitor.permitted(Action.INCIDENT):
            return

        def opened(incident_id: int | None) -> None:
            if incident_id is not None:
                self._focus_id = incident_id
                self.monitor.tell(
                    f"Incident #{incident_id} opened (investigating): on the status page, "
                    "subscribers are told."
                )
                self.monitor.refresh_now()

        self.app.push_screen(OpenIncidentModal(), opened)

    def action_update_incident(self) -> None:
        if not self.monitor.permitted(Action.INCIDENT):
            return
        incident = self.selected_incident()
        if incident is None:
            self.monitor.tell("Select an incident first: u posts an update on it.", "warning")
            return

        def posted(updated: Incident | None) -> None:
            if updated is not None:
                self._written(updated, f"updated: {updated.phase or updated.state.value}")

        self.app.push_screen(UpdateIncidentModal(incident), posted)

    def action_postmortem(self) -> None:
        if not self.monitor.permitted(Action.INCIDENT):
            return
        incident = self.selected_incident()
        if incident is None:
            self.monitor.tell(
                "Select a resolved incident first: p writes its postmortem.", "warning"
            )
            return
        if incident.state is not IncidentState.RESOLVED:
            # Said before the text is typed, not after (the action would refuse it too).
            self.monitor.tell(
                f"Incident #{incident.id} is still open: resolve it first (u, status resolved), "
                "then write its postmortem.",
                "warning",
            )
            return

        def published(written: Incident | None) -> None:
            if written is not None:
                self._written(written, "postmortem published")

        self.app.push_screen(PostmortemModal(incident), published)

    def _written(self, incident: Incident, what: str) -> None:
        self.monitor.tell(f"Incident #{incident.id} {what}; subscribers are told.")
        self.monitor.refresh_now()


AFFECTS_SHOWN = 3
"""Components named in the table's Affects cell; the timeline panel lists them all."""


def _state_cell(incident: Incident) -> Text:
    """``OPEN``, or the status a person set (``identified``); ``resolved``."""
    if incident.state is not IncidentState.OPEN:
        return Text("resolved", style="green")
    if incident.phase and incident.phase != "resolved":
        return Text(incident.phase.upper(), style="bold red")
    return Text("OPEN", style="bold red")


def _by(incident: Incident) -> str:
    """``monitor``, ``alice`` (written), ``monitor → alice`` (taken over)."""
    person = bounded(incident.written_by or "", NAME_SHOWN)
    if incident.origin is IncidentOrigin.WRITTEN:
        return person or "a person"
    return f"monitor → {person}" if incident.taken_over else "monitor"


def written_text(incident: Incident) -> Text:
    """Who speaks for the incident on the page: the monitor, or a person (and since when)."""
    text = Text()
    kind = origin(incident)
    if kind == "auto":
        text.append("Opened by the monitor", style="dim")
        text.append(" (u takes it over: then only a person resolves it)\n\n", style="dim")
        return text
    person = bounded(incident.written_by or "", NAME_SHOWN)
    if kind == "written":
        text.append(f"Written by {person}", style="bold")
    else:
        text.append(f"Taken over by {person}", style="bold")
        text.append(": the monitor no longer resolves it by itself", style="dim")
    text.append("\n\n")
    return text


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
