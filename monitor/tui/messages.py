"""Messages between the app and its screens (small dataclasses, as Textual's own)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from monitor.tui.data import Overview


@dataclass
class StoreChanged(Message, bubble=False):
    """Something new was written to the store; ``overview`` is the main screen's new figures."""

    overview: Overview
