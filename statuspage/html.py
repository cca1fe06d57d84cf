"""The HTML pages: Jinja2 templates with autoescape on, rendered on the server, no JavaScript.

The stylesheet is inlined (one request per page) and allowed by its hash in the
Content-Security-Policy, which forbids scripts, frames, forms and every fetch
(:attr:`Renderer.csp`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping, Sequence
from itertools import chain, repeat

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from monitor.store.models import BarSeries
from statuspage.model import Board, ComponentHistory, DayView, IncidentView, day_view
from statuspage.svg import sparkline
from statuspage.text import day, html_datetime, milliseconds, percent, when
from statuspage.vocabulary import EMPTY_STORE, Condition

_day = functools.lru_cache(maxsize=1024)(day)
_SEGMENT_MEMO = 20_000
"""Segments kept between renders (~150 bytes each)."""


def day_label(entry: DayView) -> str:
    """What one segment of the 90-day bar says (to screen readers, on hover and on focus)."""
    if entry.uptime is None:
        return f"{_day(entry.start)}: no data"
    if entry.condition is Condition.OPERATIONAL:
        return f"{_day(entry.start)}: {percent(entry.uptime)} uptime, no problems"
    worst = entry.condition.word.lower()
    return f"{_day(entry.start)}: {percent(entry.uptime)} uptime; worst: {worst}"


Day = tuple[bool, int, int, int, int]
"""Whether the day is judged as critical, and its start, checks, up and worst severity."""


def bar_segments(
    days: BarSeries, memo: dict[Day, str] | None = None, critical: Sequence[bool] = ()
) -> Markup:
    """The focusable segments of one uptime bar, a day each (built here, not in a template
    loop: 50 components make 4,500 of them). ``memo`` shares identical segments between the
    bars of one page: most days of most components read the same. ``critical`` says, per day,
    whether the day is judged as critical (:func:`statuspage.model.critical_days`; empty: no
    day is), so a critical database's bar says "major outage" as the component list does."""
    memo = {} if memo is None else memo
    flags = chain(critical, repeat(False))
    parts = []
    for flag, figures in zip(flags, days.figures(), strict=False):
        key = (flag, *figures)
        segment = memo.get(key)
        if segment is None:
            d = day_view(*figures, critical=flag)
            segment = memo[key] = (
                f'<li tabindex="0" class="d-{d.condition.css}" '
                f'aria-label="{escape(day_label(d))}"></li>'
            )
        parts.append(segment)
    return Markup("".join(parts))


def latency_caption(history: ComponentHistory) -> str:
    average = sum(p.avg_ms for p in history.latency) / len(history.latency)
    return f"Response time, last 24 hours: average {milliseconds(average)}"


class Renderer:
    def __init__(self) -> None:
        # A day's segment is a function of its figures alone, and most of a page's days were on
        # the page before (90 days shown, one new a day): kept between renders, within bounds.
        self._segments: dict[Day, str] = {}
        self.env = Environment(
            loader=PackageLoader("statuspage", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.filters.update(
            when=when,
            datetime=html_datetime,
            percent=percent,
            ms=milliseconds,
        )
        css = self.env.loader.get_source(self.env, "style.css")[0]  # type: ignore[union-attr]
        self.css = Markup(css)  # our own stylesheet, not user input
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        self.csp = (
            f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        # A component's status line depends on its condition alone: rendered once per condition
        # here rather than by a macro call per component and render.
        macros = self.env.get_template("macros.html").module
        status_line = {c: Markup(macros.status(c)) for c in Condition}  # type: ignore[attr-defined]
        self.env.globals.update(css=self.css, EMPTY_STORE=EMPTY_STORE, status_line=status_line)

    def clear_memos(self) -> None:
        """Forget the segments and day names kept between renders (as after a restart)."""
        self._segments.clear()
        _day.cache_clear()

    def _render(self, name: str, **context: object) -> bytes:
        return self.env.get_template(name).render(**context).encode()

    def index(self, board: Board, history: Mapping[str, ComponentHistory]) -> bytes:
        lines = {
            # svg.py escapes what it draws
            c.id: (Markup(sparkline(h.latency, h.latency_start)), latency_caption(h))
            for c in board.components
            if (h := history.get(c.id)) is not None and h.latency
        }
        if len(self._segments) > _SEGMENT_MEMO:
            self._segments.clear()
        bars = {cid: bar_segments(h.days, self._segments, h.critical) for cid, h in history.items()}
        return self._render(
            "index.html",
            board=board,
            page=board.page,
            page_name=board.page.name,
            history=history,
            sparklines=lines,
            bars=bars,
        )

    def incident(self, board: Board, incident: IncidentView) -> bytes:
        return self._render(
            "incident.html",
            board=board,
            page=board.page,
            page_name=board.page.name,
            incident=incident,
        )

    def message(self, page_name: str, title: str, text: str) -> bytes:
        """A short page for 404 and 503 answers."""
        return self._render("message.html", page_name=page_name, title=title, text=text)
