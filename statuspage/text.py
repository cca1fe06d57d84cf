"""Formatting shared by every output: times, percentages, and cleaning stored text.

Times a person reads come from :mod:`monitor.i18n` (the reader's language, the page's zone,
always named); :func:`when` and :func:`day` are its English in UTC, for the outputs that have no
reader's language (the Atom feed); machines get UTC ISO (:func:`iso`, :func:`html_datetime`).

Everything the page publishes goes through :func:`clean` first: control characters (which XML
cannot carry and terminals misread) are dropped and runaway lengths are cut, so a hostile display
name or note cannot break the Atom feed or the layout. Escaping is each output's own job
(Jinja2's autoescape, ``json``, ``xml.etree``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from monitor.figures import percent_text
from monitor.i18n import DEFAULT_LANGUAGE, N_, format_day, format_moment, translations

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
    return format_moment(ts, DEFAULT_LANGUAGE, UTC)


def day(ts: float) -> str:
    """``14 May 2025``."""
    return format_day(ts, DEFAULT_LANGUAGE, UTC)


def percent(value: float | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """Uptime, rounded down: 99.996 % is ``99.99%``, never a flattering ``100.00%`` (the one
    rule of :func:`monitor.figures.percent_text`, which the TUI uses too); in Russian with its
    decimal comma and a space before the sign (``99,99 %``)."""
    if lang == DEFAULT_LANGUAGE:
        return percent_text(value)
    if value is None:
        return translations(lang).gettext(N_("no data"))
    return _number(percent_text(value).removesuffix("%")) + "\u00a0%"


def milliseconds(value: float, lang: str = DEFAULT_LANGUAGE) -> str:
    """``1,234 ms``, ``5.3 ms``; in Russian ``1 234 мс``, ``5,3 мс``."""
    number = f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
    if lang == DEFAULT_LANGUAGE:
        return f"{number} ms"
    unit = translations(lang).gettext(N_("ms"))
    return f"{_number(number)} {unit}"


def _number(english: str) -> str:
    """An English-written number as Russian writes it: a (no-break) space between thousands,
    a decimal comma. (The only other language; a third would take Babel's number formats.)"""
    return english.replace(",", "\u00a0").replace(".", ",")
