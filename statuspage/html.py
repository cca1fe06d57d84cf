"""The HTML pages: Jinja2 templates with autoescape on, rendered on the server, no JavaScript.

Each page exists in every language of :mod:`monitor.i18n`: one Jinja2 environment per language,
with Jinja2's i18n extension and that language's catalogue installed (``{{ _("…") }}``,
``{% trans %}``), and its own filters for times in the page's time zone. The environments are
made once, so a render costs what it did in one language.

The stylesheet is inlined (one request per page) and allowed by its hash in the
Content-Security-Policy, which forbids scripts, frames, forms and every fetch
(:attr:`Renderer.csp`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from itertools import chain, repeat
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from monitor.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    LANGUAGES,
    Phrase,
    format_day,
    format_duration,
    format_moment,
    translations,
    zone_label,
)
from monitor.store.models import BarSeries
from statuspage.model import Board, ComponentHistory, DayView, IncidentView, day_view
from statuspage.svg import sparkline
from statuspage.text import html_datetime, milliseconds, percent
from statuspage.vocabulary import EMPTY_STORE, Condition

if TYPE_CHECKING:  # babel is imported when first needed (monitor.i18n.catalogues)
    from babel.support import Translations

_SEGMENT_MEMO = 20_000
"""Segments kept between renders (~150 bytes each)."""
_BAR_MEMO = 400
"""Whole bars, sparklines and components' <li> kept between renders (a bar ~10 KB, an <li> a
bar and ~1 KB: ~8 MB at most; a page of 50 components in 2 languages keeps 100 of each)."""

Gettext = Callable[[str], str]


def _identity(text: str) -> str:
    return text


def day_label(
    entry: DayView, _: Gettext = _identity, lang: str = DEFAULT_LANGUAGE, zone: tzinfo = UTC
) -> str:
    """What one segment of the 90-day bar says (to screen readers, on hover and on focus)."""
    day = format_day(entry.start, lang, zone)
    if entry.uptime is None:
        return _("%(day)s: no data") % {"day": day}
    uptime = percent(entry.uptime, lang)
    if entry.condition is Condition.OPERATIONAL:
        return _("%(day)s: %(uptime)s uptime, no problems") % {"day": day, "uptime": uptime}
    worst = _(entry.condition.word).lower()
    return _("%(day)s: %(uptime)s uptime; worst: %(worst)s") % {
        "day": day,
        "uptime": uptime,
        "worst": worst,
    }


Day = tuple[bool, int, int, int, int]
"""Whether the day is judged as critical, and its start, checks, up and worst severity."""
SegmentKey = tuple[str, bool, int, int, int, int]
"""A :data:`Day` in a language."""


def bar_segments(
    days: BarSeries,
    memo: dict[SegmentKey, str] | None = None,
    critical: Sequence[bool] = (),
    *,
    lang: str = DEFAULT_LANGUAGE,
    zone: tzinfo = UTC,
) -> Markup:
    """The focusable segments of one uptime bar, a day each (built here, not in a template
    loop: 50 components make 4,500 of them). ``memo`` shares identical segments between the
    bars of one page: most days of most components read the same. ``critical`` says, per day,
    whether the day is judged as critical (:func:`statuspage.model.critical_days`; empty: no
    day is), so a critical database's bar says "major outage" as the component list does.
    ``lang`` and ``zone``: the language and time zone the days are named in."""
    memo = {} if memo is None else memo
    gettext = translations(lang).gettext
    flags = chain(critical, repeat(False))
    parts = []
    for flag, figures in zip(flags, days.figures(), strict=False):
        key = (lang, flag, *figures)
        segment = memo.get(key)
        if segment is None:
            d = day_view(*figures, critical=flag)
            segment = memo[key] = (
                f'<li tabindex="0" class="d-{d.condition.css}" '
                f'aria-label="{escape(day_label(d, gettext, lang, zone))}"></li>'
            )
        parts.append(segment)
    return Markup("".join(parts))


def latency_caption(history: ComponentHistory, lang: str = DEFAULT_LANGUAGE) -> str:
    average = sum(p.avg_ms for p in history.latency) / len(history.latency)
    return translations(lang).gettext("Response time, last 24 hours: average %(ms)s") % {
        "ms": milliseconds(average, lang)
    }


def zone_name(zone: tzinfo, at: float) -> str:
    """How the footer names the page's zone: ``UTC``, or ``Europe/Moscow (MSK)``."""
    label = zone_label(datetime.fromtimestamp(at, zone))
    key = str(getattr(zone, "key", "") or "")
    return label if not key or key in ("UTC", "Etc/UTC", label) else f"{key} ({label})"


def _plain_gettext(
    catalogue: Translations,
) -> tuple[Callable[..., Markup], Callable[..., Markup]]:
    """Jinja2's newstyle ``gettext``/``ngettext`` for an autoescaping environment, without
    ``pass_context``: the translation as Markup, %-formatted with its variables (escaped), always
    (so ``%%`` reads ``%`` with or without variables, as Jinja's)."""

    def gettext(string: str, /, **variables: object) -> Markup:
        return Markup(catalogue.gettext(string)) % variables

    def ngettext(singular: str, plural: str, num: int, /, **variables: object) -> Markup:
        variables.setdefault("num", num)
        return Markup(catalogue.ngettext(singular, plural, num)) % variables

    return gettext, ngettext


class Renderer:
    def __init__(self, zone: tzinfo = UTC) -> None:
        # A day's segment is a function of its figures alone, and most of a page's days were on
        # the page before (90 days shown, one new a day): kept between renders, within bounds.
        self._segments: dict[SegmentKey, str] = {}
        # ...and so is a whole bar, which most often reads as on the last render: one lookup
        # per component instead of 90 (a cold `/` joined 4,500 memoised segments, ~1 ms).
        self._bars: dict[tuple[object, ...], Markup] = {}
        self._lines: dict[tuple[object, ...], tuple[Markup, str]] = {}  # likewise sparklines
        self._items: dict[tuple[object, ...], Markup] = {}  # and each component's <li>
        self.zone = zone
        self.envs = {lang: self._environment(lang) for lang in LANGUAGES}
        self.env = self.envs[DEFAULT_LANGUAGE]
        css = self.env.loader.get_source(self.env, "style.css")[0]  # type: ignore[union-attr]
        self.css = Markup(css)  # our own stylesheet, not user input
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        self.csp = (
            f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        for env in self.envs.values():
            env.globals.update(css=self.css)
        self._item_macros: dict[str, Callable[..., str]] = {
            # a module of its own: the cached one was made before status_line was a global
            lang: env.get_template("macros.html").make_module().component_item  # type: ignore[attr-defined]
            for lang, env in self.envs.items()
        }

    def _environment(self, lang: str) -> Environment:
        env = Environment(
            loader=PackageLoader("statuspage", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            extensions=["jinja2.ext.i18n"],
            # our own words made from data (an automatic incident's title and updates) are
            # printed in the page's language; people's text is a plain str, printed as written
            finalize=lambda value: value.said_in(lang) if isinstance(value, Phrase) else value,
        )
        # newstyle: every translated string is %-formatted with its variables, which are escaped
        env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
        # ...by plain callables doing what Jinja's newstyle ones do: theirs take the Context, and
        # a call inside a loop then derives a new Context (a copy of every variable) each time,
        # ~200 calls per `/` (4 per component): 15-20 % of the template's time.
        gettext, ngettext = _plain_gettext(translations(lang))
        env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext)
        zone = self.zone
        env.filters.update(
            when=lambda ts: format_moment(ts, lang, zone),
            day=lambda ts: format_day(ts, lang, zone),
            duration=lambda seconds: format_duration(seconds, lang),
            datetime=html_datetime,
            percent=lambda value: percent(value, lang),
            ms=lambda value: milliseconds(value, lang),
        )
        # A component's status line depends on its condition alone: rendered once per condition
        # here rather than by a macro call per component and render.
        env.globals.update(lang=lang, EMPTY_STORE=EMPTY_STORE)
        macros = env.get_template("macros.html").module
        status_line = {c: Markup(macros.status(c)) for c in Condition}  # type: ignore[attr-defined]
        env.globals.update(status_line=status_line)
        return env

    def gettext(self, lang: str) -> Gettext:
        return translations(lang).gettext

    def clear_memos(self) -> None:
        """Forget the segments and day names kept between renders (as after a restart)."""
        self._segments.clear()
        self._bars.clear()
        self._lines.clear()
        self._items.clear()
        format_day.cache_clear()
        format_moment.cache_clear()

    def render(self, lang: str, name: str, now: float, here: str = "/", **context: object) -> bytes:
        """The template ``name`` in ``lang``, with the page's zone, footer and language
        switcher (the subscription pages render theirs through this too). ``now``: the moment
        whose zone abbreviation the footer names (MSK, CET or CEST); ``here``: the page's path,
        which the language switcher links to in the other languages (``/incidents/7?lang=ru``)."""
        env = self.envs.get(lang) or self.env
        zone = zone_name(self.zone, now)
        others = [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES if code != lang]
        return (
            env.get_template(name)
            .render(zone_name=zone, here=here, other_languages=others, **context)
            .encode()
        )

    def index(
        self,
        board: Board,
        history: Mapping[str, ComponentHistory],
        lang: str = DEFAULT_LANGUAGE,
    ) -> bytes:
        if len(self._segments) > _SEGMENT_MEMO:
            self._segments.clear()
        if len(self._items) > _BAR_MEMO:  # (as many bars and sparklines as items, or fewer)
            self._items.clear()
            self._lines.clear()
            self._bars.clear()
        # A component's <li> depends on what it shows alone, and most often reads as on the
        # last render: memoised whole (~50 % of the template's time was this loop).
        item = self._item_macros.get(lang) or self._item_macros[DEFAULT_LANGUAGE]
        bars = {cid: self._bar(h, lang) for cid, h in history.items()}
        items = {}
        for c in board.components:
            h = history[c.id]
            spark = self._sparkline(h, lang) if h.latency else None
            bar = bars[c.id]
            key = (lang, c, h.uptime, h.since, len(h.days), spark, bar)
            shown = self._items.get(key)
            if shown is None:
                shown = self._items[key] = Markup(item(c, h, spark, bar))
            items[c.id] = shown
        return self.render(
            lang,
            "index.html",
            board.now,
            board=board,
            page=board.page,
            page_name=board.page.name,
            items=items,
        )

    def _bar(self, history: ComponentHistory, lang: str) -> Markup:
        """:func:`bar_segments` of one component, memoised whole by everything it depends on."""
        days = history.days
        key = (
            lang,
            tuple(history.critical),
            tuple(days.starts),
            tuple(days.checks),
            tuple(days.up),
            tuple(days.worst),
        )
        bar = self._bars.get(key)
        if bar is None:
            bar = self._bars[key] = bar_segments(
                days, self._segments, history.critical, lang=lang, zone=self.zone
            )
        return bar

    def _sparkline(self, history: ComponentHistory, lang: str) -> tuple[Markup, str]:
        """A target's response-time line and its caption, memoised by what they show."""
        key = (lang, history.latency_start, tuple(history.latency))
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = (
                Markup(sparkline(history.latency, history.latency_start, lang=lang)),  # escaped
                latency_caption(history, lang),
            )
        return line

    def incident(self, board: Board, incident: IncidentView, lang: str = DEFAULT_LANGUAGE) -> bytes:
        return self.render(
            lang,
            "incident.html",
            board.now,
            f"/incidents/{incident.id}",
            board=board,
            page=board.page,
            page_name=board.page.name,
            incident=incident,
        )

    def message(
        self,
        page_name: str,
        title: str,
        text: str,
        lang: str = DEFAULT_LANGUAGE,
        now: float | None = None,
    ) -> bytes:
        """A short page for 404 and 503 answers. ``title`` and ``text`` are ours (marked with
        ``N_``), translated here: as plain text, escaped by the template like any other.
        ``now`` (default: the wall clock) only picks the zone's name in the footer."""
        _ = self.gettext(lang)
        moment = time.time() if now is None else now
        return self.render(
            lang, "message.html", moment, page_name=page_name, title=_(title), text=_(text)
        )
