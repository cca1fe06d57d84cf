"""Text of ours worded from data (an automatic incident's title, its updates) that every output
takes as English and the page says again in its reader's language.

A :class:`Phrase` *is* its English text (a ``str``: the JSON, the feed, comparisons and hashes
see only that), and carries how to word it in any language. The HTML pages' Jinja2 environments
finalize every printed value through :meth:`Phrase.said_in`, so a template prints
``{{ incident.name }}`` and the reader gets their language; text written by people is a plain
``str`` and is printed as written.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.i18n.catalogues import translations
from monitor.i18n.negotiation import DEFAULT_LANGUAGE

Gettext = Callable[[str], str]


class Phrase(str):
    """English text, and how to word it with another language's gettext."""

    _word: Callable[[Gettext], str]
    _said: dict[str, str]

    def __new__(cls, english: str, word: Callable[[Gettext], str]) -> Phrase:
        phrase = super().__new__(cls, english)
        phrase._word = word
        phrase._said = {}
        return phrase

    def said_in(self, lang: str) -> str:
        """The phrase in ``lang`` (worded once per language, then kept)."""
        if lang == DEFAULT_LANGUAGE:
            return str(self)
        said = self._said.get(lang)
        if said is None:
            said = self._said[lang] = self._word(translations(lang).gettext)
        return said

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return (str, (str(self),))  # a copy or a pickle is its English text
