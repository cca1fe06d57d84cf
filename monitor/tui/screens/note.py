"""Typing a note onto an open incident; public notes also appear on the status page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from monitor.store import Incident


@dataclass(frozen=True, slots=True)
class NoteDraft:
    text: str
    public: bool


class NoteModal(ModalScreen[NoteDraft | None]):
    CSS_PATH = "modals.tcss"
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

    def on_mount(self) -> None:
        self.query_one("#note-text", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "add":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        text = self.query_one("#note-text", Input).value.strip()
        if not text:
            self.query_one("#note-problem", Static).update("Type the note first.")
            return
        self.dismiss(NoteDraft(text, self.query_one("#note-public", Checkbox).value))
