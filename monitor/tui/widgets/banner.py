"""The overall banner: one headline in the colour of the worst state, and what is wrong."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from monitor.store import Status
from monitor.tui.data import Summary

_CLASSES = {
    Status.HEALTHY: "-healthy",
    Status.DEGRADED: "-degraded",
    Status.UNHEALTHY: "-outage",
    Status.UNREACHABLE: "-outage",
    Status.UNKNOWN: "-unknown",
}
_SYMBOL = {
    Status.HEALTHY: "●",
    Status.DEGRADED: "▲",
    Status.UNHEALTHY: "✖",
    Status.UNREACHABLE: "✖",
    Status.UNKNOWN: "?",
}


class Banner(Static):
    DEFAULT_CSS = """
    Banner {
        height: auto;
        min-height: 2;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    Banner.-healthy { background: $success-darken-2; }
    Banner.-degraded { background: $warning-darken-3; }
    Banner.-outage { background: $error-darken-2; }
    Banner.-unknown { background: $panel; }
    Banner.-error { background: $error-darken-3; }
    """

    def show(self, summary: Summary) -> None:
        for name in (*_CLASSES.values(), "-error"):
            self.remove_class(name)
        self.add_class(_CLASSES[summary.level])
        text = Text(f"{_SYMBOL[summary.level]} {summary.headline}", style="bold")
        text.append("\n")
        text.append(summary.detail)
        self.update(text)

    def show_error(self, message: str) -> None:
        for name in _CLASSES.values():
            self.remove_class(name)
        self.add_class("-error")
        self.update(Text("✖ STORE UNAVAILABLE", style="bold") + Text("\n" + message))
