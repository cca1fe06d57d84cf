"""The message catalogues: ``locales/<lang>/LC_MESSAGES/messages.mo``, compiled from the ``.po``
files when the package is built (``hatch_build.py``).

A checkout that was never built (or whose ``.po`` changed since) has no current ``.mo``: the
catalogue is then compiled here, in memory, from its ``.po`` — the page never fails to speak for
want of a build step, and says so once in the debug log.
"""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.i18n.negotiation import LANGUAGES

if TYPE_CHECKING:
    from babel.support import Translations

# Babel is imported when a catalogue is first needed, not with this package: monitor.impact
# imports N_ from here, and the CLI and the TUI load that without ever translating (~80 ms).

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"
_log = logging.getLogger(__name__)


def po_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


def compile_po(po: Path) -> bytes:
    """A ``.po`` file compiled to ``.mo`` bytes (fuzzy entries left out, as msgfmt does)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _current(mo: Path, po: Path) -> bool:
    """Whether the ``.mo`` exists and is not older than its ``.po`` (or the ``.po`` is gone)."""
    try:
        compiled = mo.stat().st_mtime
    except FileNotFoundError:
        return False
    try:
        return compiled >= po.stat().st_mtime
    except FileNotFoundError:
        return True


@functools.cache
def translations(lang: str) -> Translations:
    """The catalogue of ``lang`` (one of :data:`LANGUAGES`), loaded once per process.

    ``.gettext``/``.ngettext`` translate; a string the catalogue lacks is its English self."""
    from babel.support import Translations

    if lang not in LANGUAGES:
        raise ValueError(f"no catalogue for language {lang!r}; one of {', '.join(LANGUAGES)}")
    po, mo = po_path(lang), mo_path(lang)
    if _current(mo, po):
        with mo.open("rb") as compiled:
            return Translations(compiled, domain=DOMAIN)
    _log.debug("%s is missing or older than its .po: compiling %s in memory", mo.name, po)
    return Translations(io.BytesIO(compile_po(po)), domain=DOMAIN)
