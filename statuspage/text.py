"""Formatting shared by every output: times (UTC), percentages, and cleaning stored text.

Everything the page publishes goes through :func:`clean` first: control characters (which XML
cannot carry and terminals misread) are dropped and runaway lengths are cut, so a hostile display
name or note cannot break the Atom feed or the layout. Escaping is each output's own job
(Jinja2's autoescape, ``json``, ``xml.etree``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from monitor.figures import percent_text

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
NAME_LIMIT = 200
NOTE_LIMIT = 5000


def clean(text: str, limit: int = NAME_LIMIT) -> str:
    """Stored text made safe to publish: no control characters, at most ``limit`` characters."""
    text = _CONTROL.sub("", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def iso(ts: float) -> str:
    """Statuspage's timestamp form: ``2025-05-14T10:42:00.000Z``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def html_datetime(ts: float) -> str:
    """For ``<time datetime=…>``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def when(ts: float) -> str:
    """``14 May 2025, 10:42 UTC``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def day(ts: float) -> str:
    """``14 May 2025``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return f"{moment.day} {moment:%b %Y}"


def percent(value: float | None) -> str:
    """Uptime, rounded down: 99.996 % is ``99.99%``, never a flattering ``100.00%`` (the one
    rule of :func:`monitor.figures.percent_text`, which the TUI uses too)."""
    return percent_text(value)


def milliseconds(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"
