"""Reusable pieces of the TUI: status words, sparklines, uptime figures, the banner."""

from monitor.tui.widgets.banner import Banner
from monitor.tui.widgets.components import ComponentsTable
from monitor.tui.widgets.sparkline import spark
from monitor.tui.widgets.status import StatusWord, breaker_text, status_text
from monitor.tui.widgets.uptime import UptimeStrip

__all__ = [
    "Banner",
    "ComponentsTable",
    "StatusWord",
    "UptimeStrip",
    "breaker_text",
    "spark",
    "status_text",
]
