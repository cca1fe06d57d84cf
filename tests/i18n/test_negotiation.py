"""Which language a reader gets (DESIGN §10): ``?lang=`` first, then ``Accept-Language``."""

from __future__ import annotations

import time

import pytest

from monitor.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate
from monitor.i18n.negotiation import ENTRY_LIMIT, HEADER_LIMIT


def test_the_languages() -> None:
    assert LANGUAGES == ("en", "ru")
    assert DEFAULT_LANGUAGE == "en"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("RU-ru", "ru"),
        ("ru_RU", "ru"),
        ("en-GB", "en"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),  # a Russian Chrome
        ("en-US,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,de;q=0.9,ru;q=0.8,en;q=0.7", "ru"),  # the best one we speak
        ("de, fr;q=0.8", "en"),  # none we speak
        ("en;q=0.5, ru;q=0.6", "ru"),  # q-values, not order
        ("ru;q=0.5, en;q=0.5", "ru"),  # a tie: the header's order
        ("ru;q=0, en;q=0.1", "en"),  # q=0: not acceptable
        ("ru;q=0", "en"),
        ("*", "en"),
        ("de, *;q=0.5, ru;q=0.4", "en"),  # anything beats Russian here
        ("ru ; q = 0.8 , en ; q=0.3", "ru"),  # spaces
        ("ru;level=1;q=0.9, en;q=0.8", "ru"),  # other parameters
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header, None) == expected


@pytest.mark.parametrize(
    "header",
    [
        ",,,;;;===",
        "ru;q=abc, en;q=0.2",  # a malformed q skips its entry
        "ru;q=2, en;q=0.2",  # above 1: malformed
        "ru;q=-1, en;q=0.2",
        "ru;q=nan, en;q=0.2",
        "ru;q=1e-3, en;q=0.2",
        "ru;q=, en;q=0.2",
        "x" * 100 + ", en",  # an overlong tag
        "\x00ru\x00, en",
        "рус, en",
    ],
)
def test_garbage_is_skipped_not_an_error(header: str) -> None:
    assert negotiate(header, None) == "en"


def test_a_huge_header_is_read_within_bounds() -> None:
    # Russian past the first KiB, or past the 64th entry, is not looked at.
    assert negotiate("de;q=0.9, " * (HEADER_LIMIT // 10) + "ru", None) == "en"
    entries = ",".join(["de"] * ENTRY_LIMIT + ["ru"])
    assert len(entries) < HEADER_LIMIT
    assert negotiate(entries, None) == "en"
    assert negotiate(",".join(["de"] * (ENTRY_LIMIT - 1) + ["ru"]), None) == "ru"
    # and a megabyte of it costs next to nothing (it is cut before it is split)
    started = time.perf_counter()
    for _ in range(100):
        negotiate("ru-RU;q=0.5, " * 100_000, None)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("requested", "header", "expected"),
    [
        ("ru", None, "ru"),
        ("ru", "en-US,en;q=0.9", "ru"),  # ?lang= wins over the header
        ("en", "ru-RU,ru;q=0.9", "en"),
        ("RU", None, "ru"),
        ("ru-RU", None, "ru"),
        ("xx", None, "en"),  # unknown: ignored, the header decides, else the default
        ("xx", "ru", "ru"),
        ("", "ru", "ru"),
        ("r" * 10_000, "ru", "ru"),
        ("ru\x00", None, "en"),
    ],
)
def test_requested_language(requested: str, header: str | None, expected: str) -> None:
    assert negotiate(header, requested) == expected
