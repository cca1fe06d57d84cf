"""Typing a note onto an open incident; public notes also appear on the status page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Static

from monitor.store import Incident
from monitor.tui.screens.dialog import DialogModal


@dataclass(frozen=True, slots=True)
class NoteDraft:
    text: str
    public: bool


class NoteModal(DialogModal[NoteDraft]):
    FIRST_FIELD = "note-text"
    SUBMIT_BUTTON = "add"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="note.cancel"),
    ]

    def __init__(self, incident: Incident) -> None:
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Note on incident #{self.incident.id}", classes="dialog-title")
            yield Static(self.incident.title, classes="dialog-body", markup=False)
            yield Input(placeholder="What is happening, what was done…", id="note-text")
            yield Checkbox("Public: also shown on the status page", id="note-public")
            yield Static("", id="note-problem", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Add note", id="add", variant="primary")

    def _submit(self) -> None:
        text = self.query_one("#note-text", Input).value.strip()
        if not text:
            self.query_one("#note-problem", Static).update("Type the note first.")
            return
        self.dismiss(NoteDraft(text, self.query_one("#note-public", Checkbox).value))
