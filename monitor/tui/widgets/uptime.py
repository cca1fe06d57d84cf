"""Uptime percentages coloured by how good they are, and a strip of per-period blocks."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from monitor.figures import percent_text
from monitor.store import Status, UptimeBar
from monitor.tui.formatting import DASH

_BLOCK_STYLE = {
    Status.HEALTHY: "green",
    Status.DEGRADED: "yellow",
    Status.UNHEALTHY: "red",
    Status.UNREACHABLE: "red",
    Status.UNKNOWN: "bright_black",
}


def uptime_style(value: float | None) -> str:
    if value is None:
        return "dim"
    if value >= 99.9:
        return "green"
    if value >= 99.0:
        return "yellow"
    return "bold red"


def figure_text(value: float | None) -> Text:
    """A table's uptime figure exactly as :func:`monitor.figures.percent_text` prints it for the
    page and its JSON (``82.78%``, ``100%``): one set of digits everywhere. No data is a dash
    (``no data`` does not fit the column)."""
    return Text(DASH if value is None else percent_text(value), style=uptime_style(value))


def uptime_triple(values: Sequence[float | None]) -> Text:
    """``82.78 99.95   100``: 24 h, 7 d and 30 d in one compact cell, the same digits as
    :func:`figure_text` (the unit is in the column's heading: three of them do not fit)."""
    text = Text()
    for n, value in enumerate(values):
        if n:
            text.append(" ")
        figure = DASH if value is None else percent_text(value).removesuffix("%")
        text.append(f"{figure:>5}", style=uptime_style(value))
    return text


def strip_text(bars: Sequence[UptimeBar]) -> Text:
    """One block per period, coloured by the worst state seen in it; a dim dot where no check ran.

    The shape differs by state (█ served, ▄ degraded, ▁ down), so it reads without colour too.
    """
    text = Text()
    for bar in bars:
        if not bar.checks:
            text.append("·", style="bright_black")
            continue
        shape = {"green": "█", "yellow": "▄", "red": "▁"}.get(_BLOCK_STYLE[bar.worst], "█")
        text.append(shape, style=_BLOCK_STYLE[bar.worst])
    return text


class UptimeStrip(Static):
    """A labelled strip of blocks: the state timeline of a component."""

    DEFAULT_CSS = """
    UptimeStrip {
        height: 1;
        width: 1fr;
    }
    """

    def show(self, label: str, bars: Sequence[UptimeBar], trailer: str = "") -> None:
        text = Text(f"{label:<8}", style="bold")
        text.append_text(strip_text(bars))
        if trailer:
            text.append(f"  {trailer}", style="dim")
        self.update(text)
