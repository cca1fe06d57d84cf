"""The CI check for missing translations, and how the catalogues are loaded.

Every message the sources mark (``monitor/i18n/babel.cfg``: the templates, the status page, the
public messages, monitor.impact) must be in the Russian catalogue, translated, not fuzzy, with
the same placeholders, and neither catalogue may keep entries the sources no longer have. A
failure lists each problem: re-extract (``pybabel extract -F monitor/i18n/babel.cfg -k N_ -o
/tmp/messages.pot .``; ``pybabel update -i /tmp/messages.pot -d monitor/i18n/locales``) and
translate.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from monitor.i18n import catalogues
from monitor.i18n.catalogues import compile_po, mo_path, po_path
from tests.i18n.extraction import extract

_PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[sdfr]|%[sdfr]|\{[A-Za-z_][A-Za-z0-9_]*\}")


@pytest.fixture(scope="module")
def sources() -> Catalog:
    return extract()


def _read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as po:
        return read_po(po, locale=lang)


def _key(message: Message) -> str:
    return message.id[0] if isinstance(message.id, tuple | list) else message.id


def _forms(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    """A msgid's or msgstr's texts: one, or one per plural form."""
    if value is None:
        return [""]
    return [value] if isinstance(value, str) else list(value)


def _placeholders(text: str) -> list[str]:
    """Named and positional placeholders, and how many lone percent signs (newstyle gettext
    %-formats every string: a stray one breaks the page)."""
    found = sorted(set(_PLACEHOLDER.findall(text)))
    stray = _PLACEHOLDER.sub("", text).replace("%%", "").count("%")
    return [*found, *(["%"] * stray)]


def _problems(message: Message) -> list[str]:
    """What is wrong with one Russian entry."""
    key = _key(message)
    if message.fuzzy:
        return [f"fuzzy: {key!r}"]
    forms = _forms(message.string)
    if not all(forms):
        return [f"untranslated: {key!r}"]
    wanted = _placeholders(_forms(message.id)[-1])
    return [
        f"placeholders differ: {key!r} has {wanted}, the translation {form!r} {_placeholders(form)}"
        for form in forms
        if _placeholders(form) != wanted
    ]


def test_every_message_is_translated_into_russian(sources: Catalog) -> None:
    russian = _read("ru")
    problems = []
    for message in sources:
        if not message.id:
            continue
        entry = russian.get(message.id)
        if entry is None:
            problems.append(f"missing from ru: {_key(message)!r} ({message.locations[0][0]})")
        else:
            problems += _problems(entry)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_no_obsolete_entries(sources: Catalog, lang: str) -> None:
    catalog = _read(lang)
    stale = [f"obsolete in {lang}: {_key(m)!r}" for m in catalog if m.id and m.id not in sources]
    stale += [f"obsolete (#~) in {lang}: {key!r}" for key in catalog.obsolete]
    assert not stale, "\n".join(stale)


def test_english_is_the_sources_own_words(sources: Catalog) -> None:
    """The English catalogue lists every message and translates none (the msgid is the text)."""
    english = _read("en")
    missing = [_key(m) for m in sources if m.id and m.id not in english]
    translated = [_key(m) for m in english if m.id and any(_forms(m.string))]
    assert not missing, missing
    assert not translated, translated


def test_russian_plural_forms() -> None:
    russian = _read("ru")
    assert russian.num_plurals == 3
    ngettext = catalogues.translations("ru").ngettext
    forms = [ngettext("%(num)d day ago", "%(num)d days ago", n) % {"num": n} for n in (1, 3, 5)]
    assert forms == ["1 день назад", "3 дня назад", "5 дней назад"]
    assert ngettext("%(num)d day ago", "%(num)d days ago", 21) % {"num": 21} == "21 день назад"


def test_the_check_finds_what_it_should() -> None:
    """The check itself: each kind of problem is reported."""
    bad = Catalog(locale="ru")
    bad.add("Today", "")
    bad.add("Since %(day)s", "С %(date)s")
    bad.add("Open incidents", "Открытые инциденты", flags=["fuzzy"])
    bad.add("Last checked", "Проверено на 100%")
    bad.add("Components", "Компоненты")
    reported = [p for m in bad if m.id for p in _problems(m)]
    assert reported == [
        "untranslated: 'Today'",
        "placeholders differ: 'Since %(day)s' has ['%(day)s'], the translation 'С %(date)s' "
        "['%(date)s']",
        "fuzzy: 'Open incidents'",
        "placeholders differ: 'Last checked' has [], the translation 'Проверено на 100%' ['%']",
    ]


# -- loading --------------------------------------------------------------------------------------


@pytest.fixture
def locales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the catalogues' .po files (no .mo: a checkout never built)."""
    copy = tmp_path / "locales"
    shutil.copytree(catalogues.LOCALES, copy, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(catalogues, "LOCALES", copy)
    return copy


def _load(lang: str) -> str:
    """'Today' in a catalogue loaded afresh (not the process's cached one)."""
    return catalogues.translations.__wrapped__(lang).gettext("Today")


def test_without_a_build_the_po_is_compiled_in_memory(locales: Path) -> None:
    assert not mo_path("ru").exists()
    assert _load("ru") == "Сегодня"
    assert _load("en") == "Today"
    assert not mo_path("ru").exists()  # nothing written into the package


def test_a_current_mo_is_used_and_a_stale_one_is_not(locales: Path) -> None:
    po = po_path("ru")
    mo = mo_path("ru")
    # a .mo of different words, newer than the .po: it is what the build made, so it is used
    altered = po.with_name("altered.po")
    altered.write_text(po.read_text().replace('msgstr "Сегодня"', 'msgstr "Нынче"'))
    shutil.copystat(po, altered)
    mo.write_bytes(compile_po(altered))
    os.utime(mo, (po.stat().st_mtime + 10, po.stat().st_mtime + 10))
    assert _load("ru") == "Нынче"
    # the .po edited after the build: the .mo is stale, the .po wins
    os.utime(mo, (po.stat().st_mtime - 10, po.stat().st_mtime - 10))
    assert _load("ru") == "Сегодня"


def test_an_unknown_language_has_no_catalogue() -> None:
    with pytest.raises(ValueError, match="no catalogue"):
        catalogues.translations("xx")
