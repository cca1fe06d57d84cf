"""A service's last error as the monitor keeps and shows it (#14): with its time from the
backend's ``last_error_at``, shown with its age, never cut inside a word ("CircuitBreakerOpenErro"
stayed on healthy rows, cut by the column)."""

from __future__ import annotations

import pytest

from monitor import answer
from monitor.figures import percent_text
from monitor.tui.formatting import age, last_error

AT = 1_747_224_000.0


def sample_details(**fields: object) -> dict[str, object]:
    document = {"status": "degraded", "checks": {"s3": {"status": "degraded", **fields}}}
    (sample,) = answer.services(document)
    return sample.details


def test_the_answer_keeps_when_the_last_error_happened() -> None:
    details = sample_details(last_error="ObjectStoreError", last_error_at=AT)
    assert (details["last_error"], details["last_error_at"]) == ("ObjectStoreError", AT)


@pytest.mark.parametrize("value", ["yesterday", True, -1, float("inf"), 2**40, None, [AT]])
def test_an_unusable_time_is_dropped_not_a_failed_check(value: object) -> None:
    details = sample_details(last_error="ObjectStoreError", last_error_at=value)
    assert "last_error_at" not in details
    assert details["last_error"] == "ObjectStoreError"


def test_a_cleared_error_leaves_nothing() -> None:
    assert "last_error" not in sample_details(last_error=None, last_error_at=None)


def test_a_healthy_service_has_no_last_error_even_from_an_older_backend() -> None:
    document = {
        "status": "healthy",
        "checks": {"s3": {"status": "healthy", "last_error": "ObjectStoreError"}},
    }
    (sample,) = answer.services(document)
    assert "last_error" not in sample.details


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s ago"),
        (59, "59 s ago"),
        (180, "3 min ago"),
        (7300, "2 h ago"),
        (4 * 86400, "4 d ago"),
    ],
)
def test_age(seconds: float, text: str) -> None:
    assert age(seconds) == text


def test_the_error_reads_with_its_age() -> None:
    assert last_error("ObjectStoreError", AT, AT + 185) == "ObjectStoreError, 3 min ago"
    assert last_error("ObjectStoreError", None, AT) == "ObjectStoreError"
    assert last_error(None, AT, AT) == "—"


def test_a_long_error_is_cut_between_words_never_inside_one() -> None:
    error = "CircuitBreakerOpenError: breaker s3 is open"
    # The age goes first, then whole words; the name is never cut while it fits.
    assert last_error(error, AT, AT + 10, limit=43) == error
    assert last_error(error, AT, AT + 10, limit=40) == "CircuitBreakerOpenError: breaker s3 is…"
    assert last_error(error, AT, AT + 10, limit=30) == "CircuitBreakerOpenError…"
    assert last_error(error, AT, AT + 10, limit=24) == "CircuitBreakerOpenError…"
    assert last_error("CircuitBreakerOpenError", AT, AT + 10, limit=24) == "CircuitBreakerOpenError"
    # A first word longer than the line: nothing else fits, so it alone is cut.
    assert last_error("CircuitBreakerOpenError", None, AT, limit=12) == "CircuitBrea…"


def test_control_characters_never_reach_the_line() -> None:
    assert last_error("refused\x1b[2J\n\u202eX", None, AT) == "refused [2J X"


def test_a_rounded_figure_prints_as_itself_in_the_tui() -> None:
    # The TUI's rows hold monitor.figures' values, already rounded down to two decimals, and
    # print them with percent_text; floored again as floats, 0.57 % of them would lose a
    # hundredth (57.57 printed as 57.56).
    figures = [n / 100 for n in range(10_000)]
    assert [percent_text(v) for v in figures] == [f"{v:.2f}%" for v in figures]
    assert percent_text(99.999) == "99.99%"
