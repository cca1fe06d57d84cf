"""How times, durations, response times and percentages read on an on-call screen.

Pure functions of their arguments (the time zone and "now" are passed in), so that screenshots of
an app fed with fixed data and a frozen clock are the same on every machine.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

from rich.text import Text

DASH = "—"


def duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 4h``: the two largest units, no more."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def clock_time(at: float, tz: tzinfo, now: float) -> str:
    """``22:01`` today, ``11-13 22:01`` on another day."""
    moment = datetime.fromtimestamp(at, tz)
    if moment.date() == datetime.fromtimestamp(now, tz).date():
        return moment.strftime("%H:%M")
    return moment.strftime("%m-%d %H:%M")


def timestamp(at: float, tz: tzinfo) -> str:
    """``2023-11-14 22:01:05`` with the zone's abbreviation, for timelines."""
    moment = datetime.fromtimestamp(at, tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()


def since(at: float | None, tz: tzinfo, now: float, *, compact: bool) -> str:
    if at is None:
        return DASH
    if compact:
        return duration(now - at)
    moment = datetime.fromtimestamp(at, tz)
    if moment.date() == datetime.fromtimestamp(now, tz).date():
        return f"{moment:%H:%M} ({duration(now - at)})"
    return f"{moment:%m-%d} ({duration(now - at)})"


def millis(value: float | None) -> str:
    """``12 ms``, ``850 ms``, ``1.2 s``."""
    if value is None:
        return DASH
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def percent(value: float | None, *, decimals: int) -> str:
    """Rounded down, so 99.96 % never shows as 100."""
    if value is None:
        return DASH
    if value >= 100:
        return "100"
    scale = 10**decimals
    return f"{math.floor(value * scale) / scale:.{decimals}f}"


def plain(text: str, style: str = "") -> Text:
    """Text from outside (a target's or service's name, an error, an incident title, a note, an
    alert summary) as a cell or label shows it: literally. A ``str`` handed to a DataTable cell,
    a Label or a Static is read as Rich markup: ``[/]`` in a service name crashed the screen and
    ``[@click=app.quit]`` became an action."""
    return Text(text, style=style)


def bounded(text: str, limit: int) -> str:
    """Text from outside (a replica's address, an instance or monitor id) as one short line: no
    control character or line break reaches the terminal, and at most ``limit`` characters (the
    last an ellipsis when cut), so one long id cannot push a table's columns or a banner apart."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
