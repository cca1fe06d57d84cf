"""What a breaker reset did on each replica: one line each, the failures in red."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ResetOutcomesModal(ModalScreen[None]):
    CSS_PATH = "modals.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "close", "Close", id="outcomes.close"),
    ]

    def __init__(self, title: str, summary: str, lines: Sequence[tuple[str, bool]]) -> None:
        super().__init__()
        self.title_text = title
        self.summary = summary
        self.lines = tuple(lines)
        """(line, ok) per replica, in key order; each line holds outside text (never markup)."""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text), classes="dialog-title")
            yield Static(Text(self.summary), classes="dialog-body")
            with VerticalScroll(id="outcomes"):
                yield Static(self._render_lines(), id="outcome-lines")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", variant="primary")

    def _render_lines(self) -> Text:
        text = Text()
        for n, (line, ok) in enumerate(self.lines):
            if n:
                text.append("\n")
            text.append(line, style="green" if ok else "bold red")
        return text

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
