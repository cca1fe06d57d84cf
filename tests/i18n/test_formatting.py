"""Times, days and durations in each language, always with the zone named."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.i18n import format_day, format_duration, format_moment

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
MOMENT = datetime(2026, 12, 7, 7, 42, tzinfo=UTC).timestamp()  # 10:42 in Moscow


def test_utc_in_english_is_the_page_as_it_always_read() -> None:
    assert format_moment(MOMENT, "en", UTC) == "7 Dec 2026, 07:42 UTC"
    assert format_moment(datetime(2025, 9, 4, 9, 5, tzinfo=UTC).timestamp(), "en") == (
        "4 Sep 2025, 09:05 UTC"  # "Sep", not CLDR en_GB's "Sept"
    )
    assert format_day(MOMENT, "en", UTC) == "7 Dec 2026"


def test_moscow_is_three_hours_ahead_and_named() -> None:
    assert format_moment(MOMENT, "en", MOSCOW) == "7 Dec 2026, 10:42 MSK"
    assert format_moment(MOMENT, "ru", MOSCOW) == "7 дек. 2026 г., 10:42 MSK"
    assert format_day(MOMENT, "ru", MOSCOW) == "7 дек. 2026 г."


def test_the_day_is_the_zones_day() -> None:
    late = datetime(2026, 12, 7, 22, 30, tzinfo=UTC).timestamp()  # 01:30 on the 8th in Moscow
    assert format_day(late, "en", UTC) == "7 Dec 2026"
    assert format_day(late, "en", MOSCOW) == "8 Dec 2026"


def test_summer_time_changes_the_name() -> None:
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp()
    summer = datetime(2026, 7, 15, 12, 0, tzinfo=UTC).timestamp()
    assert format_moment(winter, "en", BERLIN).endswith("13:00 CET")
    assert format_moment(summer, "en", BERLIN).endswith("14:00 CEST")
    assert format_moment(summer, "ru", BERLIN) == "15 июл. 2026 г., 14:00 CEST"


def test_a_zone_without_an_abbreviation_is_named_by_its_offset() -> None:
    yekaterinburg = ZoneInfo("Asia/Yekaterinburg")
    assert format_moment(MOMENT, "ru", yekaterinburg) == "7 дек. 2026 г., 12:42 UTC+05"


def test_an_unknown_language_falls_back_to_english() -> None:
    assert format_moment(MOMENT, "xx", UTC) == "7 Dec 2026, 07:42 UTC"


@pytest.mark.parametrize(
    ("seconds", "en", "ru"),
    [
        (-5, "0 s", "0 с"),
        (45, "45 s", "45 с"),
        (60, "1 min", "1 мин"),
        (12 * 60 + 59, "12 min", "12 мин"),
        (3600, "1 h", "1 ч"),
        (3900, "1 h 5 min", "1 ч 5 мин"),
        (86_400, "1 d", "1 дн."),
        (2 * 86_400 + 3 * 3600 + 59, "2 d 3 h", "2 дн. 3 ч"),
    ],
)
def test_durations(seconds: float, en: str, ru: str) -> None:
    assert format_duration(seconds, "en") == en
    assert format_duration(seconds, "ru") == ru
