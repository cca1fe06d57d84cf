"""monitor.impact's one rule worded in Russian: the same values, the reader's words; English
(what the daemon stores) unchanged by default."""

from __future__ import annotations

from monitor.i18n import Phrase, translations
from monitor.impact import Condition, describe, sentence
from monitor.store import IncidentComponent, Status

RU = translations("ru").gettext
NAMES = {("api", "database"): "База данных", ("api", ""): "QuestCity API"}
LISTED = [
    IncidentComponent("api", "database", Status.UNREACHABLE, critical=True),
    IncidentComponent("api", "", Status.UNHEALTHY),
]


def _name(target: str, service: str) -> str:
    return NAMES[(target, service)]


def test_english_by_default() -> None:
    wording = describe(LISTED, _name)
    assert wording.title == "Major outage: База данных"
    assert wording.body == (
        "База данных is unavailable (major outage). Also affected: QuestCity API (major outage)."
    )


def test_in_russian() -> None:
    wording = describe(LISTED, _name, RU)
    assert wording.title == "Серьёзный сбой: База данных"
    assert wording.body == (
        "База данных не работает (серьёзный сбой). Также затронуты: QuestCity API (серьёзный сбой)."
    )
    assert describe([], _name, RU).title == "Неполадка"


def test_every_condition_has_its_russian_sentence() -> None:
    said = {c: sentence("Фото", c, RU) for c in Condition}
    assert (
        said[Condition.DEGRADED]
        == "Фото работает медленнее обычного (снижение производительности)."
    )
    assert said[Condition.PARTIAL] == "Фото работает с перебоями (частичный сбой)."
    assert said[Condition.OPERATIONAL] == "Фото снова работает; следим за восстановлением."
    assert all(text != sentence("Фото", c) for c, text in said.items())
    assert all("Фото" in text for text in said.values())


def test_a_phrase_is_its_english_and_says_itself_again() -> None:
    calls = []

    def word(_: object) -> str:
        calls.append(1)
        return describe(LISTED, _name, RU).title

    phrase = Phrase("Major outage: База данных", word)
    assert phrase == "Major outage: База данных" and isinstance(phrase, str)
    assert phrase.said_in("en") == "Major outage: База данных"
    assert phrase.said_in("ru") == phrase.said_in("ru") == "Серьёзный сбой: База данных"
    assert len(calls) == 1  # worded once per language
