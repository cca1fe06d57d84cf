"""How times, durations, response times and percentages read on an on-call screen.

Pure functions of their arguments (the time zone and "now" are passed in), so that screenshots of
an app fed with fixed data and a frozen clock are the same on every machine.
"""

from __future__ import annotations

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


def age(seconds: float) -> str:
    """``45 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``: one unit, for a label's age."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def last_error(error: str | None, at: float | None, now: float, limit: int = 60) -> str:
    """A service's last error with its age (``ObjectStoreError, 3 min ago``), on one line of at
    most ``limit`` characters. Too long, it is cut between words (``…`` at the end), never inside
    one: "CircuitBreakerOpenErro" read as a different error. The age goes before any of the
    error's words does; a first word longer than ``limit`` alone is cut (nothing else fits).
    Without an error: the dash."""
    if not error:
        return DASH
    text = " ".join("".join(c if c.isprintable() else " " for c in error[: limit * 4]).split())
    suffix = f", {age(now - at)}" if at is not None else ""
    if len(text) + len(suffix) <= limit:
        return text + suffix
    if len(text) <= limit:
        return text
    words = text.split(" ")
    kept = words[0]
    for word in words[1:]:
        if len(kept) + 1 + len(word) + 1 > limit:  # room for the word and the ellipsis
            break
        kept = f"{kept} {word}"
    if len(kept) + 1 > limit:
        return kept[: limit - 1] + "…"
    return kept.rstrip(",;:") + "…"
