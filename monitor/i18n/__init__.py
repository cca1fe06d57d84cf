"""The public's languages: English and Russian (DESIGN §10).

Everything the public reads in words of ours (the status page, its messages, e-mails to
subscribers) goes through this package: which language a reader gets (:func:`negotiate`), its
message catalogue (:func:`translations`), and times, days and durations written the way that
language writes them, in a named time zone (:func:`format_moment`, :func:`format_day`,
:func:`format_duration`). Text written by people (titles, updates, component names) is never
translated: it is shown as written.

Strings are marked in Python with ``_("…")`` (a gettext callable passed in) or :func:`N_` (a
marker for tables built at import time, translated where shown) and in templates with
``{{ _("…") }}`` / ``{% trans %}``; ``pybabel extract`` (``monitor/i18n/babel.cfg``) finds them,
``monitor/i18n/locales/*/LC_MESSAGES/messages.po`` hold the translations, compiled to ``.mo``
when the package is built (``hatch_build.py``) — or here, in memory, when a checkout was never
built.
"""

from __future__ import annotations

from monitor.i18n.catalogues import translations
from monitor.i18n.formatting import format_day, format_duration, format_moment, zone_label
from monitor.i18n.negotiation import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, negotiate
from monitor.i18n.phrase import Gettext, Phrase

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "N_",
    "Gettext",
    "Phrase",
    "format_day",
    "format_duration",
    "format_moment",
    "identity",
    "negotiate",
    "translations",
    "zone_label",
]


def N_(text: str) -> str:  # gettext's conventional name, which extraction looks for
    """Marks ``text`` for extraction without translating it (it is translated where shown)."""
    return text


def identity(text: str) -> str:
    """The gettext of the language the strings are written in (English): each as it is."""
    return text
