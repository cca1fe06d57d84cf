"""``/history.atom``: incidents as an Atom feed (RFC 4287), built with ``xml.etree``.

One entry per incident (open ones first, then the most recent; at most 50), its public updates as
the entry's HTML content. ``xml.etree`` escapes the text; :func:`statuspage.text.clean` has already
removed the characters XML cannot carry.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from statuspage.model import Board, IncidentView
from statuspage.text import iso, when

ATOM = "http://www.w3.org/2005/Atom"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _content(incident: IncidentView) -> str:
    """The updates, newest first, as (escaped) HTML."""
    parts = [
        f"<p><small>{html.escape(when(u.at))}</small><br>"
        f"<strong>{html.escape(u.status.word)}</strong> - {html.escape(u.body)}</p>"
        for u in incident.updates
    ]
    return "".join(parts) or "<p>No public updates.</p>"


def atom(board: Board) -> bytes:
    base = board.page.url
    feed = ET.Element("feed", {"xmlns": ATOM, "xml:lang": "en"})
    _add(feed, "id", f"{base}/history.atom")
    _add(feed, "title", f"{board.page.name} status - incident history")
    updated = max((i.updated_at for i in board.incidents), default=board.updated_at)
    _add(feed, "updated", iso(updated))
    _add(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    _add(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/history.atom")
    author = _add(feed, "author")
    _add(author, "name", board.page.name)
    for incident in board.incidents:
        link = f"{base}/incidents/{incident.id}"
        entry = _add(feed, "entry")
        _add(entry, "id", link)
        _add(entry, "title", f"{incident.name} ({incident.status.word.lower()})")
        _add(entry, "published", iso(incident.opened_at))
        _add(entry, "updated", iso(incident.updated_at))
        _add(entry, "link", rel="alternate", type="text/html", href=link)
        _add(entry, "content", _content(incident), type="html")
    body = ET.tostring(feed, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode()
