"""SVG drawn on the server: the 24 h response-time line and the status badges.

Both are strings built from numbers and escaped text (``html.escape``), with their own accessible
name (``role="img"``, ``aria-label`` and ``<title>``), so they read the same with or without CSS
and JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from monitor.i18n import DEFAULT_LANGUAGE, translations
from monitor.store.models import LatencyPoint
from statuspage.text import milliseconds, percent
from statuspage.vocabulary import Condition

SPARK_WIDTH = 240
SPARK_HEIGHT = 40
_PAD = 3.0
_GAP_HOURS = 3
"""Hours without data that still join into one line; a longer gap breaks it."""


def sparkline(
    points: Sequence[LatencyPoint], start: float, hours: int = 24, lang: str = DEFAULT_LANGUAGE
) -> str:
    """Hourly average response times as a line; a gap of more than three hours breaks it.
    ``lang``: the language of its label (the page's reader's)."""
    if not points:
        return ""
    top = max(p.avg_ms for p in points) * 1.15 or 1.0
    step = SPARK_WIDTH / max(hours - 1, 1)
    segments: list[list[str]] = []
    previous: int | None = None
    for point in points:
        hour = round((point.start - start) / 3600)
        if not 0 <= hour < hours:
            continue
        x = hour * step
        y = SPARK_HEIGHT - _PAD - (point.avg_ms / top) * (SPARK_HEIGHT - 2 * _PAD)
        if previous is None or hour - previous > _GAP_HOURS:
            segments.append([])
        segments[-1].append(f"{x:.1f},{y:.1f}")
        previous = hour
    lines = "".join(
        f'<polyline points="{" ".join(s if len(s) > 1 else s * 2)}"/>' for s in segments if s
    )
    average = sum(p.avg_ms for p in points) / len(points)
    label = translations(lang).gettext(
        "Response time over the last 24 hours: average %(average)s, "
        "slowest hour %(hour)s, slowest check %(check)s"
    ) % {
        "average": milliseconds(average, lang),
        "hour": milliseconds(max(p.avg_ms for p in points), lang),
        "check": milliseconds(max(p.max_ms for p in points), lang),
    }
    return (
        f'<svg class="spark" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" '
        f'preserveAspectRatio="none" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<line class="base" x1="0" y1="{SPARK_HEIGHT - _PAD}" x2="{SPARK_WIDTH}" '
        f'y2="{SPARK_HEIGHT - _PAD}"/>'
        f'<g class="line">{lines}</g></svg>'
    )


# -- badges ---------------------------------------------------------------------------------------

BADGE_COLOURS = {
    Condition.OPERATIONAL: "#1a7f37",
    Condition.DEGRADED: "#9a6700",
    Condition.PARTIAL: "#bc4c00",
    Condition.MAJOR: "#cf222e",
    Condition.NO_DATA: "#6e7781",
}
_LABEL_COLOUR = "#555"
_BADGE_NAME_LIMIT = 40
_NARROW = set("ijlft.,:;!|'()[] ")
_WIDE = set("mwMW%@")


def _text_width(text: str) -> float:
    """Approximate width at 11 px Verdana (good enough to size a badge)."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.9
        elif char in _WIDE:
            width += 10.5
        elif char.isupper() or char.isdigit():
            width += 7.6
        else:
            width += 6.9
    return width


MAINTENANCE_COLOUR = "#0969da"
UNKNOWN_COLOUR = "#6e7781"


def badge(
    name: str, condition: Condition, uptime: float | None, *, maintenance: bool = False
) -> str:
    """``[name | operational · 99.98%]``: the word and the figure, never the colour alone.
    ``maintenance``: the component is in an active window (``[name | maintenance]``)."""
    if len(name) > _BADGE_NAME_LIMIT:
        name = name[: _BADGE_NAME_LIMIT - 1].rstrip() + "…"
    if maintenance:
        value, word, colour = "maintenance", "Under maintenance", MAINTENANCE_COLOUR
    else:
        value, word, colour = condition.word.lower(), condition.word, BADGE_COLOURS[condition]
    if uptime is not None:
        value += f" · {percent(uptime)}"
    uptime_words = f", {percent(uptime)} uptime over 90 days" if uptime is not None else ""
    return _draw(name, value, colour, f"{name}: {word}{uptime_words}")


def unknown_badge() -> str:
    """What ``/badge/{name}.svg`` answers (with a 404) for a name the page does not know: an
    image still, so a README that embeds a mistyped name shows why rather than a broken one."""
    return _draw("status", "unknown component", UNKNOWN_COLOUR, "No such component on this page")


def _draw(name: str, value: str, colour: str, label: str) -> str:
    left = round(_text_width(name) + 12)
    right = round(_text_width(value) + 12)
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" '
        f'viewBox="0 0 {width} 20" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<rect width="{left}" height="20" fill="{_LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" text-anchor="middle" '
        f'font-family="Verdana,DejaVu Sans,Geneva,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{escape(name)}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{escape(value)}</text>'
        f"</g></svg>"
    )
