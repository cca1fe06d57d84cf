"""A status as a word, a symbol and a colour: never colour alone (colour-blind readers, monochrome
terminals, screenshots pasted into a ticket)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from monitor.store import Status
from monitor.tui.data import BreakerSpread

_LOOK: dict[Status, tuple[str, str]] = {
    Status.HEALTHY: ("●", "bold green"),
    Status.DEGRADED: ("▲", "bold yellow"),
    Status.UNHEALTHY: ("✖", "bold red"),
    Status.UNREACHABLE: ("✖", "bold red"),
    Status.UNKNOWN: ("?", "dim"),
}

_BREAKER: dict[str, tuple[str, str]] = {
    "closed": ("closed", "green"),
    "open": ("OPEN", "bold red"),
    "half_open": ("half-open", "bold yellow"),
}


def status_text(status: Status) -> Text:
    symbol, style = _LOOK[status]
    return Text(f"{symbol} {status.value}", style=style)


MAINTENANCE = ("◆", "bold blue")
"""A component an active maintenance window covers (what the status page shows)."""


def maintenance_text(*, compact: bool = False) -> Text:
    """``◆ maintenance``; compact: ``maintenance`` (the word fills the narrow column)."""
    symbol, style = MAINTENANCE
    return Text("maintenance" if compact else f"{symbol} maintenance", style=style)


def breaker_text(state: str | None, *, reset: bool = False) -> Text:
    """``closed``, ``OPEN``, ``half-open``; ``↺``: reset from here, not yet seen by a check."""
    if state is None:
        return Text("—", style="dim")
    word, style = _BREAKER.get(state, (state, "bold"))
    text = Text(word, style=style)
    if reset:
        text.append(" ↺", style="bold cyan")
    return text


_SPREAD_WORD = {"open": "open", "half_open": "half-open"}


def spread_text(spread: BreakerSpread, *, reset: bool = False, compact: bool = False) -> Text:
    """A service's breaker across its replicas: ``closed`` when every one is, else the worst
    state and on how many: ``open on 2/3``, ``half-open on 1/3`` (compact: ``open 2/3``)."""
    if spread.state == "closed":
        return breaker_text("closed", reset=reset)
    word = _SPREAD_WORD.get(spread.state, spread.state)
    _, style = _BREAKER.get(spread.state, (spread.state, "bold"))
    on = " " if compact else " on "
    text = Text(f"{word}{on}{spread.count}/{spread.total}", style=style)
    if reset:
        text.append(" ↺", style="bold cyan")
    return text


class StatusWord(Static):
    """A status shown large enough to read from across the room: symbol, word and colour."""

    DEFAULT_CSS = """
    StatusWord {
        width: auto;
        height: 1;
    }
    """

    def __init__(self, status: Status = Status.UNKNOWN, *, id: str | None = None) -> None:
        super().__init__(status_text(status), id=id)
        self.status = status

    def show(self, status: Status) -> None:
        self.status = status
        self.update(status_text(status))
