"""``/history.atom``: incidents and maintenance windows as an Atom feed (RFC 4287), built with
``xml.etree``.

One entry per incident (open ones first, then the most recent; at most 50), its public updates as
the entry's HTML content: the machine's worded ones, and a person's (written or taken-over
incidents, their postmortem) as written. Then one entry per maintenance window the page knows
(upcoming, in progress, recently completed or cancelled), its schedule and updates as content.

The feed is in English unless asked for another language (``?lang=ru``; feed readers fetch one
address, so the reader's ``Accept-Language`` is not consulted): our words and the times (in the
page's zone) are in it, text people wrote is as written, and ``xml:lang`` says which. ``xml.etree``
escapes the text; :func:`statuspage.text.clean` has already removed the characters XML cannot
carry.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, tzinfo

from monitor.i18n import DEFAULT_LANGUAGE, N_, format_moment, translations
from statuspage.maintenance import MaintenanceStatus, MaintenanceView
from statuspage.model import Board, IncidentView
from statuspage.text import iso

ATOM = "http://www.w3.org/2005/Atom"
Gettext = Callable[[str], str]

_WINDOW_WORD = {
    MaintenanceStatus.SCHEDULED: N_("Scheduled"),
    MaintenanceStatus.IN_PROGRESS: N_("In progress"),
    MaintenanceStatus.VERIFYING: N_("Verifying"),
    MaintenanceStatus.COMPLETED: N_("Completed"),
}


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _update(moment: str, word: str, body: str) -> str:
    return (
        f"<p><small>{html.escape(moment)}</small><br>"
        f"<strong>{html.escape(word)}</strong> - {html.escape(body)}</p>"
    )


def _content(incident: IncidentView, _: Gettext, when: Callable[[float], str]) -> str:
    """The updates, newest first, as (escaped) HTML."""
    parts = [_update(when(u.at), _(u.status.word), u.body) for u in incident.updates]
    return "".join(parts) or f"<p>{html.escape(_('No public updates.'))}</p>"


def window_word(window: MaintenanceView) -> str:
    """The window's state as people are told it (``Cancelled`` beside Statuspage's four)."""
    return N_("Cancelled") if window.cancelled else _WINDOW_WORD[window.status]


def _window_content(window: MaintenanceView, _: Gettext, when: Callable[[float], str]) -> str:
    schedule = _("Scheduled for %(start)s until %(end)s.") % {
        "start": when(window.scheduled_for),
        "end": when(window.scheduled_until),
    }
    parts = [f"<p>{html.escape(schedule)}</p>"]
    if window.components:
        names = ", ".join(c.name for c in window.components)
        parts.append(f"<p>{html.escape(_('Components: %(names)s') % {'names': names})}</p>")
    for update in window.updates:
        body = _(update.body) if update.stock else update.body
        parts.append(_update(when(update.at), _(_WINDOW_WORD[update.status]), body))
    return "".join(parts)


def atom(board: Board, lang: str = DEFAULT_LANGUAGE, zone: tzinfo = UTC) -> bytes:
    _ = translations(lang).gettext

    def when(ts: float) -> str:
        return format_moment(ts, lang, zone)

    base = board.page.url
    query = "" if lang == DEFAULT_LANGUAGE else f"?lang={lang}"
    feed = ET.Element("feed", {"xmlns": ATOM, "xml:lang": lang})
    _add(feed, "id", f"{base}/history.atom{query}")
    _add(feed, "title", _("%(name)s status - incident history") % {"name": board.page.name})
    times = [i.updated_at for i in board.incidents] + [m.updated_at for m in board.maintenances]
    _add(feed, "updated", iso(max(times, default=board.updated_at)))
    _add(feed, "link", rel="alternate", type="text/html", href=f"{base}/{query}")
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/history.atom{query}")
    author = _add(feed, "author")
    _add(author, "name", board.page.name)
    for incident in board.incidents:
        link = f"{base}/incidents/{incident.id}"
        entry = _add(feed, "entry")
        _add(entry, "id", link)
        _add(entry, "title", f"{incident.name} ({_(incident.status.word).lower()})")
        _add(entry, "published", iso(incident.opened_at))
        _add(entry, "updated", iso(incident.updated_at))
        _add(entry, "link", rel="alternate", type="text/html", href=f"{link}{query}")
        _add(entry, "content", _content(incident, _, when), type="html")
    for window in sorted(board.maintenances, key=lambda w: -w.updated_at):
        link = f"{base}/#{window.anchor}"
        entry = _add(feed, "entry")
        _add(entry, "id", link)
        title = _("Maintenance: %(name)s") % {"name": window.name}
        _add(entry, "title", f"{title} ({_(window_word(window)).lower()})")
        _add(entry, "published", iso(window.created_at))
        _add(entry, "updated", iso(window.updated_at))
        _add(
            entry, "link", rel="alternate", type="text/html", href=f"{base}/{query}#{window.anchor}"
        )
        _add(entry, "content", _window_content(window, _, when), type="html")
    body = ET.tostring(feed, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode()
