"""A sparkline in text, to sit in a table cell: one block character per check, oldest first.

Textual's ``Sparkline`` widget draws the detail screen's chart; table cells need text.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"
MISSING = "·"


def spark(values: Sequence[float | None], width: int, *, style: str = "cyan") -> Text:
    """The last ``width`` values scaled between their minimum and maximum.

    A check without a response time (the service was not measured) is a dim dot; a window of
    equal values is a flat line at the bottom.
    """
    window = list(values)[-width:] if width > 0 else []
    measured = [v for v in window if v is not None]
    text = Text(" " * (width - len(window)))
    if not measured:
        text.append(MISSING * len(window), style="dim")
        return text
    low, high = min(measured), max(measured)
    span = high - low
    for value in window:
        if value is None:
            text.append(MISSING, style="dim")
            continue
        level = 0 if span <= 0 else round((value - low) / span * (len(BLOCKS) - 1))
        text.append(BLOCKS[level], style=style)
    return text
