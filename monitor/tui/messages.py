"""Messages between the app and its screens (small dataclasses, as Textual's own)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from monitor.tui.data import Leadership, Overview


@dataclass
class StoreChanged(Message, bubble=False):
    """Something new was written to the store; ``overview`` is the main screen's new figures."""

    overview: Overview


@dataclass
class LeadershipChanged(Message, bubble=False):
    """The lease was read again (every tick: a lease that stops moving writes no check)."""

    leadership: Leadership | None
    now: float
