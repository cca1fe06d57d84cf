"""What the TUI's dialogs that talk to the public share (issue #15): a dialog that writes while
it stays open, the moments people type, and outside text made safe to show.

A refusal (:class:`~monitor.public_actions.PublicActionError`: a title too long, a window that
ends before it starts) or a store that does not answer is said inside the dialog, which stays
open with what was typed; it closes only once the store has the change. The writes themselves
are :mod:`monitor.public_actions`' (the CLI's too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from rich.text import Text
from textual import work
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from monitor.public_actions import PublicActionError, parse_moment
from monitor.store import Component, StoreError, component_key
from monitor.tui.formatting import bounded, duration
from monitor.tui.screens.dialog import DialogModal

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp

ResultT = TypeVar("ResultT")

KEY_SHOWN = 40
"""Characters shown of one component key in a list of them."""
NAME_SHOWN = 40
"""Characters shown of a person's or a component's name."""
KEYS_SHOWN = 3
"""Component keys named in a table cell; the panel below the table lists them all."""
LONG_TEXT = 5000
"""Characters shown of a message or a postmortem in a panel (the page shows them whole)."""


class WritingDialog(DialogModal[ResultT]):
    """A form whose submit writes through :mod:`monitor.public_actions` and answers what was
    written (``None``: cancelled). One write at a time: Enter pressed twice writes once."""

    PROBLEM: ClassVar[str]
    """The id of the Static that says what is wrong."""
    DEFAULT_CSS = """
    WritingDialog {
        align: center middle;
        background: $background 60%;
    }
    WritingDialog .public-dialog {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
    }
    WritingDialog .field {
        height: auto;
        margin-bottom: 1;
    }
    WritingDialog .field-label {
        width: 12;
        color: $text-muted;
    }
    WritingDialog .field Input, WritingDialog .field Select {
        width: 1fr;
    }
    WritingDialog .field SelectionList {
        width: 1fr;
        height: auto;
        max-height: 8;
    }
    WritingDialog .field TextArea {
        width: 1fr;
        height: 14;
    }
    WritingDialog .dialog-warning {
        color: $warning;
        text-style: bold;
        margin-bottom: 1;
    }
    WritingDialog .dialog-preview {
        height: auto;
        color: $accent;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._writing = False

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a field moves to the next one; only the last field's Enter submits (a title
        typed and Enter pressed should not publish before the message is written)."""
        event.stop()
        event.prevent_default()  # DialogModal's handler (which submits) is not called
        fields = list(self.query(Input))
        if fields and event.input is not fields[-1]:
            self.focus_next()
            return
        self._submit()

    def _submit(self) -> None:
        if not self._writing:
            self._writing = True
            self.query_one(f"#{self.SUBMIT_BUTTON}", Button).disabled = True
            self._write()

    @work(group="public-write")
    async def _write(self) -> None:
        try:
            result = await self.write()
        except PublicActionError as error:
            self.say(sentence(str(error)))
        except StoreError as error:
            self.say(store_problem(error))
        else:
            self.dismiss(result)
            return
        self._writing = False
        self.query_one(f"#{self.SUBMIT_BUTTON}", Button).disabled = False

    async def write(self) -> ResultT:
        """Read the fields and write; :class:`PublicActionError` when what was typed is refused."""
        raise NotImplementedError

    def say(self, problem: str) -> None:
        self.query_one(f"#{self.PROBLEM}", Static).update(Text(problem))


_CLI_HINT = re.compile(r" \(--[^()]*\)")
"""``(--components K1,K2)`` in a refusal: the CLI's way to say it, not a dialog's."""


def field(label: str, widget: Widget) -> Horizontal:
    """One labelled row of a dialog: the label stays when the field has a value (a placeholder
    does not)."""
    return Horizontal(Label(label, classes="field-label"), widget, classes="field")


def sentence(words: str) -> str:
    """A refusal's words as a sentence: capital first, one full stop, no CLI flags."""
    words = _CLI_HINT.sub("", words).strip()
    return f"{words[:1].upper()}{words[1:]}" + ("" if words.endswith((".", "?", "!")) else ".")


def store_problem(error: StoreError) -> str:
    """A store error as one line that names no host or password (only the error's kind)."""
    return f"Nothing was written: the history did not take it ({type(error).__name__}). Try again."


# -- moments people type ----------------------------------------------------------------------

_RELATIVE = re.compile(r"\+\s*((?:\d{1,4}\s*[mhd]\s*)+)")
_PART = re.compile(r"(\d{1,4})\s*([mhd])")
_UNIT = {"m": 60.0, "h": 3600.0, "d": 86400.0}
MOMENT_HINT = "ISO 8601 with its offset (2026-12-08T02:00+03:00, …Z), now, or +30m / +2h / +1d"


def parse_when(text: str, *, now: float, base: float | None = None) -> float:
    """A moment typed in a dialog: ``now``; ``+2h``, ``+1h30m``, ``+1d`` after ``base`` (``now``
    when None); or ISO 8601 with its offset (:func:`~monitor.public_actions.parse_moment`)."""
    cleaned = text.strip().lower()
    if cleaned == "now":
        return now
    relative = _RELATIVE.fullmatch(cleaned)
    if relative is not None:
        parts = _PART.findall(relative.group(1))
        return (now if base is None else base) + sum(int(n) * _UNIT[u] for n, u in parts)
    if cleaned.startswith(("+", "-")):
        raise PublicActionError(f"{bounded(text, 20)!r} is not a shortcut: say +30m, +2h or +1d")
    return parse_moment(text)


def utc(at: float) -> str:
    """``2026-12-08 02:00 UTC``: what a dialog previews (the zone always said)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def window_preview(starts_at: float, ends_at: float, now: float) -> str:
    """``Starts 2026-12-08 02:00 UTC (in 1h 30m), ends 2026-12-08 04:00 UTC: 2h 00m``."""
    if starts_at <= now:
        start = (
            f"Starts {utc(starts_at)} (now)"
            if now - starts_at < 60
            else (f"Started {utc(starts_at)} ({duration(now - starts_at)} ago)")
        )
    else:
        start = f"Starts {utc(starts_at)} (in {duration(starts_at - now)})"
    return f"{start}, ends {utc(ends_at)}: lasts {duration(ends_at - starts_at)}"


# -- outside text ---------------------------------------------------------------------------


def keys_cell(keys: Sequence[str]) -> str:
    """``api, api/s3 +2``: the first few keys, each one bounded line."""
    shown = ", ".join(bounded(key, KEY_SHOWN) for key in keys[:KEYS_SHOWN])
    more = len(keys) - KEYS_SHOWN
    return shown + (f" +{more}" if more > 0 else "")


def long_text(text: str, limit: int = LONG_TEXT) -> str:
    """A message or a postmortem for a panel: its lines kept, no other control character (an
    escape sequence reaches no terminal), at most ``limit`` characters."""
    kept = "".join(c if c == "\n" or c.isprintable() else " " for c in text[: limit * 2])
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def catalogue_choices(catalogue: Sequence[Component]) -> list[tuple[Text, str]]:
    """``Image storage  questcity-api/s3`` for each public component, as a SelectionList's
    (prompt, key): the prompt a Text, so a name is never read as markup. A private check is not
    offered: incidents and windows are the status page's story, and it is not on the page."""
    choices = []
    for component in catalogue:
        if not component.public:
            continue
        key = component_key(component.target, component.service)
        prompt = Text(bounded(component.display_name or key, NAME_SHOWN))
        prompt.append(f"  {bounded(key, 80)}", style="dim")
        choices.append((prompt, key))
    return choices
