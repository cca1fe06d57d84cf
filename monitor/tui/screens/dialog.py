"""What every small form the TUI asks (a silence, a note) does alike: focus its first field,
submit on Enter or its button, give nothing back on Cancel or Escape."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input

DraftT = TypeVar("DraftT")


class DialogModal(ModalScreen[DraftT | None]):
    """A form answering a draft, or ``None`` when cancelled; subclasses compose the fields."""

    CSS_PATH = "modals.tcss"
    FIRST_FIELD: ClassVar[str]
    """The id of the field focused when the dialog opens (an Input, or a TextArea)."""
    SUBMIT_BUTTON: ClassVar[str]
    """The id of the button that submits (any other button cancels)."""

    def on_mount(self) -> None:
        self.query_one(f"#{self.FIRST_FIELD}").focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == self.SUBMIT_BUTTON:
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _submit(self) -> None:
        """Dismiss with the draft, or say in the dialog what is wrong and stay open."""
        raise NotImplementedError
