"""Writing incidents for the public from the incidents screen (issue #15): ``o`` opens one (a
title, the components it affects from the store's catalogue, the declared impact, a first
update), ``u`` posts an update (Statuspage's status and a message; on an automatic incident it
says plainly that this takes it over), ``p`` publishes the postmortem of a resolved one.

Each dialog writes through :mod:`monitor.public_actions` as the signed-in engineer and stays
open with what was typed when the write is refused (:mod:`monitor.tui.screens.public`).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, SelectionList, Static, TextArea

from monitor import public_actions
from monitor.public_actions import IMPACTS, MAX_POSTMORTEM, OPENED_MESSAGE, PHASE_MESSAGES
from monitor.store import PHASES, Incident, IncidentOrigin, IncidentState, StoreError
from monitor.tui.formatting import bounded
from monitor.tui.screens.public import WritingDialog, catalogue_choices, field, long_text

IMPACT_WORDS = {
    "minor": "minor — degraded performance",
    "major": "major — partial outage",
    "critical": "critical — major outage",
}
TITLE_SHOWN = 120
"""Characters of an incident's title in a dialog's heading."""


def takeover_warning(incident: Incident) -> str | None:
    """What an update does to an automatic incident nobody has written into yet; None when it
    is written already (by a person, or taken over before)."""
    if incident.origin is not IncidentOrigin.AUTO or incident.taken_over:
        return None
    return (
        "The monitor opened this incident. Posting an update takes it over: from then on the "
        "monitor will NOT resolve it by itself (nor write public text into it) — you resolve it "
        "with the status resolved."
    )


class OpenIncidentModal(WritingDialog[int]):
    """Answers the new incident's id."""

    FIRST_FIELD = "incident-title"
    SUBMIT_BUTTON = "open"
    PROBLEM = "incident-problem"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="incident.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog public-dialog"):
            yield Label("Open an incident", classes="dialog-title")
            yield Static(
                "Shown on the status page as investigating; subscribers are told. "
                "Components: space picks one, tab moves on.",
                classes="dialog-body",
                markup=False,
            )
            yield field(
                "Title",
                Input(placeholder="What players read first", id="incident-title", compact=True),
            )
            yield field("Components", SelectionList[str](id="incident-components", compact=True))
            yield field(
                "Impact",
                Select[str](
                    [(IMPACT_WORDS[impact], impact) for impact in IMPACTS],
                    value="minor",
                    allow_blank=False,
                    id="incident-impact",
                    compact=True,
                ),
            )
            yield field(
                "Message",
                Input(
                    placeholder=f"Optional; empty: “{OPENED_MESSAGE}”",
                    id="incident-message",
                    compact=True,
                ),
            )
            yield Static("", id="incident-problem", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Open incident", id="open", variant="error")

    def on_mount(self) -> None:
        # DialogModal's on_mount (focus the title) runs after this one: Textual calls both.
        self.load_catalogue()

    @work(group="catalogue")
    async def load_catalogue(self) -> None:
        try:
            catalogue = await self.monitor.reader.components()
        except StoreError as error:
            self.say(f"The components could not be read ({type(error).__name__}). Try again.")
            return
        if not catalogue:
            self.say("The store lists no components yet: start the monitor once.")
        self.query_one(SelectionList).add_options(catalogue_choices(catalogue))

    async def write(self) -> int:
        monitor = self.monitor
        impact = self.query_one("#incident-impact", Select).value
        return await public_actions.open_incident(
            monitor.reader,
            monitor.writer,
            title=self.query_one("#incident-title", Input).value,
            components=list(self.query_one(SelectionList).selected),
            impact=str(impact),
            message=self.query_one("#incident-message", Input).value,
            by=monitor.actor,
            at=monitor.clock.wall(),
        )


class UpdateIncidentModal(WritingDialog[Incident]):
    """Answers the incident as the store has it after the update."""

    FIRST_FIELD = "update-message"
    SUBMIT_BUTTON = "post"
    PROBLEM = "update-problem"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="update.cancel"),
    ]

    def __init__(self, incident: Incident) -> None:
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        incident = self.incident
        with VerticalScroll(classes="dialog public-dialog"):
            yield Label(f"Update incident #{incident.id}", classes="dialog-title")
            yield Static(Text(bounded(incident.title, TITLE_SHOWN)), classes="dialog-body")
            warning = takeover_warning(incident)
            if warning is not None:
                yield Static(Text(warning), id="update-takeover", classes="dialog-warning")
            if incident.state is IncidentState.RESOLVED:
                yield Static(
                    "It is resolved: an update re-opens it with the status you pick "
                    "(to say what happened afterwards, write its postmortem: p).",
                    id="update-reopens",
                    classes="dialog-warning",
                    markup=False,
                )
            yield field(
                "Status",
                Select[str](
                    [(phase, phase) for phase in PHASES],
                    value=self._default_phase(),
                    allow_blank=False,
                    id="update-status",
                    compact=True,
                ),
            )
            yield field("Message", Input(id="update-message", compact=True))
            yield Static("", id="update-problem", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Post update", id="post", variant="primary")

    def _default_phase(self) -> str:
        """The status it has (a resolved one: investigating, which re-opens it)."""
        if self.incident.state is IncidentState.RESOLVED:
            return "investigating"
        return self.incident.phase if self.incident.phase in PHASES else "investigating"

    def on_mount(self) -> None:
        self._hint(self._default_phase())

    @on(Select.Changed, "#update-status")
    def _status_changed(self, event: Select.Changed) -> None:
        self._hint(str(event.value))

    def _hint(self, phase: str) -> None:
        default = PHASE_MESSAGES.get(phase, "")
        self.query_one("#update-message", Input).placeholder = (
            f"Optional; empty: “{default}”" if default else "Optional"
        )

    async def write(self) -> Incident:
        monitor = self.monitor
        status = self.query_one("#update-status", Select).value
        return await public_actions.update_incident(
            monitor.reader,
            monitor.writer,
            self.incident.id,
            status=str(status),
            message=self.query_one("#update-message", Input).value,
            by=monitor.actor,
            at=monitor.clock.wall(),
        )


class PostmortemModal(WritingDialog[Incident]):
    """Answers the incident with its postmortem (one already written is shown to be edited)."""

    FIRST_FIELD = "postmortem-text"
    SUBMIT_BUTTON = "publish"
    PROBLEM = "postmortem-problem"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="postmortem.cancel"),
        Binding("ctrl+s", "publish", "Publish", id="postmortem.publish"),
    ]

    def __init__(self, incident: Incident) -> None:
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        incident = self.incident
        with VerticalScroll(classes="dialog public-dialog"):
            yield Label(f"Postmortem of incident #{incident.id}", classes="dialog-title")
            yield Static(Text(bounded(incident.title, TITLE_SHOWN)), classes="dialog-body")
            yield field(
                "Postmortem",
                TextArea(
                    long_text(incident.postmortem or "", MAX_POSTMORTEM),
                    id="postmortem-text",
                    placeholder="What happened, why, and what was changed so it does not again",
                    compact=True,
                ),
            )
            yield Static(
                "Published on the incident's page; subscribers are told. ctrl+s publishes.",
                classes="dialog-body",
                markup=False,
            )
            yield Static("", id="postmortem-problem", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Publish", id="publish", variant="primary")

    def action_publish(self) -> None:
        self._submit()

    async def write(self) -> Incident:
        monitor = self.monitor
        return await public_actions.write_postmortem(
            monitor.reader,
            monitor.writer,
            self.incident.id,
            text=self.query_one(TextArea).text,
            by=monitor.actor,
            at=monitor.clock.wall(),
        )
