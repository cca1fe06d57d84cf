"""Which language a reader gets: ``?lang=`` if it names one we speak, else ``Accept-Language``.

The header comes from anyone, so it is read within bounds: its first :data:`HEADER_LIMIT`
characters and :data:`ENTRY_LIMIT` entries at most, each tag and q-value checked, anything
malformed skipped (never an error: a reader always gets a page).
"""

from __future__ import annotations

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
"""Each language in its own words (never translated: a reader looks for their own)."""
HEADER_LIMIT = 1024
ENTRY_LIMIT = 64
_TAG_LIMIT = 35
"""RFC 5646's longest sensible tag; anything longer is not a language tag."""


def _primary(tag: str) -> str:
    """``ru-RU`` / ``RU_ru`` → ``ru``."""
    return tag.strip().replace("_", "-").partition("-")[0].lower()


def _quality(params: str) -> float | None:
    """The q-value of an entry's parameters (1 when absent); None when malformed."""
    quality = 1.0
    for param in params.split(";"):
        key, eq, value = param.partition("=")
        if key.strip().lower() != "q":
            continue
        value = value.strip()
        # RFC 9110: "0", "1", "0.xyz", "1.000"; no exponents, signs, nan or inf.
        if not eq or not 1 <= len(value) <= 5 or not value.replace(".", "", 1).isdigit():
            return None
        quality = float(value)
        if quality > 1:
            return None
    return quality


def negotiate(accept_language: str | None, requested: str | None = None) -> str:
    """The language of ours a reader gets: ``requested`` (``?lang=``) when it is one of
    :data:`LANGUAGES` (``ru``, ``RU``, ``ru-RU``), else the best of the ``Accept-Language``
    header's (highest q-value first, then the header's order; ``*`` means any, that is the
    default), else :data:`DEFAULT_LANGUAGE`. An unknown ``requested`` is ignored."""
    if requested:
        wanted = _primary(requested[:_TAG_LIMIT])
        if wanted in LANGUAGES:
            return wanted
    if not accept_language:
        return DEFAULT_LANGUAGE
    best, best_quality = DEFAULT_LANGUAGE, 0.0
    for entry in accept_language[:HEADER_LIMIT].split(",", ENTRY_LIMIT)[:ENTRY_LIMIT]:
        tag, _, params = entry.partition(";")
        tag = tag.strip()
        if not tag or len(tag) > _TAG_LIMIT:
            continue
        quality = _quality(params)
        if quality is None or quality <= best_quality:
            continue
        language = DEFAULT_LANGUAGE if tag == "*" else _primary(tag)
        if language in LANGUAGES:
            best, best_quality = language, quality
            if quality >= 1.0:
                break  # nothing later can beat a first choice
    return best
