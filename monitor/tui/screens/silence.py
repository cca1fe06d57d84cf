"""Silencing a component's alerts for a while: how long (30m, 2h, 1d; at most 7 days) and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from monitor.alert_actions import MAX_REASON, ActionError, parse_duration
from monitor.tui.screens.dialog import DialogModal

DEFAULT_DURATION = "1h"


@dataclass(frozen=True, slots=True)
class SilenceDraft:
    seconds: float
    reason: str


class SilenceModal(DialogModal[SilenceDraft]):
    FIRST_FIELD = "silence-for"
    SUBMIT_BUTTON = "silence"
    DEFAULT_CSS = """
    SilenceModal {
        align: center middle;
        background: $background 60%;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="silence.cancel"),
    ]

    def __init__(self, component: str, name: str) -> None:
        super().__init__()
        self.component = component
        self.component_name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Silence {self.component}", classes="dialog-title", markup=False)
            yield Static(
                f"{self.component_name}: its alerts are still recorded and shown, but not sent "
                "to the notifiers until the silence ends. A target's silence covers its "
                "services.",
                classes="dialog-body",
                markup=False,
            )
            yield Input(
                value=DEFAULT_DURATION,
                placeholder="For how long: 30m, 2h, 1d (at most 7d)",
                id="silence-for",
            )
            yield Input(
                placeholder="Why (optional): shown with the silence and on the incident",
                id="silence-reason",
                max_length=MAX_REASON,
            )
            yield Static("", id="silence-problem", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Silence", id="silence", variant="warning")

    def _submit(self) -> None:
        try:
            seconds = parse_duration(self.query_one("#silence-for", Input).value)
        except ActionError as error:
            words = str(error)
            self.query_one("#silence-problem", Static).update(
                Text(f"{words[:1].upper()}{words[1:]}.")
            )
            return
        self.dismiss(SilenceDraft(seconds, self.query_one("#silence-reason", Input).value.strip()))
