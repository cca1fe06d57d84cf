"""Times, days and durations as each language writes them, in a named time zone.

``7 Dec 2026, 10:42 MSK`` / ``7 дек. 2026 г., 10:42 MSK``: the day in the language's own form
(CLDR's, through Babel), a 24-hour clock, and always the zone, so a reader abroad knows which
10:42 is meant. Results are kept (a page shows the same few moments render after render).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, tzinfo

from monitor.i18n.negotiation import DEFAULT_LANGUAGE

_DAY_PATTERN = {"en": "d MMM y", "ru": "d MMM y 'г'."}
"""English as the page always wrote it (``14 May 2025``; CLDR's en_GB would say ``Sept``),
Russian as CLDR's medium date (``7 дек. 2026 г.``)."""

_UNITS = {
    "en": ("d", "h", "min", "s"),
    "ru": ("дн.", "ч", "мин", "с"),
}
"""Abbreviated units, which need no plural forms: ``1 h 5 min``, ``1 ч 5 мин``."""


def _language(lang: str) -> str:
    return lang if lang in _DAY_PATTERN else DEFAULT_LANGUAGE


def _date(moment: datetime, lang: str) -> str:
    from babel.dates import format_date  # when first needed: see monitor.i18n.catalogues

    return format_date(moment, _DAY_PATTERN[lang], locale=lang)


def zone_label(moment: datetime) -> str:
    """The zone's abbreviation at that moment (``UTC``, ``MSK``, ``CEST``); zones whose data
    has none (``+05``) are written as an offset from UTC (``UTC+05``)."""
    name = moment.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


@functools.lru_cache(maxsize=8192)
def format_moment(ts: float, lang: str, zone: tzinfo = UTC) -> str:
    """``7 Dec 2026, 10:42 MSK`` / ``7 дек. 2026 г., 10:42 MSK``."""
    moment = datetime.fromtimestamp(ts, zone)
    return f"{_date(moment, _language(lang))}, {moment:%H:%M} {zone_label(moment)}"


@functools.lru_cache(maxsize=4096)
def format_day(ts: float, lang: str, zone: tzinfo = UTC) -> str:
    """``7 Dec 2026`` / ``7 дек. 2026 г.``: the day ``ts`` falls on in ``zone``."""
    return _date(datetime.fromtimestamp(ts, zone), _language(lang))


def format_duration(seconds: float, lang: str) -> str:
    """``45 s``, ``12 min``, ``1 h 5 min``, ``2 d 3 h`` (``1 ч 5 мин``, ``2 дн. 3 ч``): the two
    largest units, rounded down to whole minutes from a minute on."""
    days_unit, hours_unit, minutes_unit, seconds_unit = _UNITS[_language(lang)]
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total} {seconds_unit}"
    minutes = total // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} {days_unit} {hours} {hours_unit}" if hours else f"{days} {days_unit}"
    if hours and minutes:
        return f"{hours} {hours_unit} {minutes} {minutes_unit}"
    if hours:
        return f"{hours} {hours_unit}"
    return f"{minutes} {minutes_unit}"
