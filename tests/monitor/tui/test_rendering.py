"""The pure pieces: durations, percentages, sparklines, the banner's summary, reset outcomes."""

from __future__ import annotations

from datetime import UTC

import pytest

from monitor.config import Target
from monitor.store import Status
from monitor.tui.data import ComponentRow, Overview, ResetMark
from monitor.tui.formatting import duration, millis, since
from monitor.tui.resetting import unavailable_reason
from monitor.tui.summary import summarize
from monitor.tui.widgets.sparkline import spark
from monitor.tui.widgets.status import breaker_text, status_text

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h 00m"), (90061, "1d 1h")],
)
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_millis_and_since() -> None:
    assert (millis(None), millis(12.4), millis(1534.0)) == ("—", "12 ms", "1.5 s")
    assert since(NOW - 65, UTC, NOW, compact=False) == "22:12 (1m)"
    assert since(NOW - 2 * 86400, UTC, NOW, compact=False) == "11-12 (2d 0h)"
    assert since(NOW - 65, UTC, NOW, compact=True) == "1m"


def test_spark_scales_between_min_and_max_and_marks_gaps() -> None:
    assert spark([1.0, 5.0, 9.0, None], 4).plain == "▁▅█·"
    assert spark([3.0, 3.0], 4).plain == "  ▁▁"
    assert spark([None, None], 2).plain == "··"
    assert spark(list(range(50)), 5).plain == "▁▃▅▆█"  # the last five only


def test_status_and_breaker_words() -> None:
    assert status_text(Status.UNREACHABLE).plain == "✖ unreachable"
    assert breaker_text("half_open").plain == "half-open"
    assert breaker_text("closed", reset=True).plain == "closed ↺"
    assert breaker_text(None).plain == "—"


def _row(service: str, status: Status, at: float | None = NOW) -> ComponentRow:
    title = "API" if service == "" else service.title()
    return ComponentRow("api", service, title, status, checked_at=at, breaker="open")


def test_summary_names_what_is_wrong() -> None:
    overview = Overview(
        NOW, (_row("", Status.DEGRADED), _row("s3", Status.DEGRADED), _row("db", Status.HEALTHY))
    )
    summary = summarize(overview)
    assert (summary.level, summary.headline) == (Status.DEGRADED, "DEGRADED")
    assert summary.detail == "API degraded (S3 degraded)"
    assert summarize(Overview(NOW, (_row("", Status.HEALTHY),))).headline == (
        "ALL SYSTEMS OPERATIONAL"
    )
    assert summarize(Overview(NOW, (_row("", Status.UNKNOWN, None),))).headline == "NO DATA YET"
    stale = summarize(Overview(NOW, (_row("", Status.HEALTHY),), stale=("API",)))
    assert "is the daemon running?" in stale.detail


def test_a_reset_shows_until_a_newer_check() -> None:
    overview = Overview(NOW, (_row("db", Status.UNHEALTHY, NOW - 5),))
    marked = overview.with_resets({("api", "db"): ResetMark("closed", NOW)})
    assert marked.rows[0].shown_breaker == "closed"
    later = Overview(NOW, (_row("db", Status.UNHEALTHY, NOW + 5),))
    assert later.with_resets({("api", "db"): ResetMark("closed", NOW)}).rows[0].shown_breaker == (
        "open"
    )


TARGET = Target("api", "http://api.test", admin_token_env="ADMIN")


def test_unavailable_reason_says_how_to_enable() -> None:
    assert "$ADMIN is not set" in unavailable_reason(TARGET)
    assert 'admin_token_env = "QUESTCITY_ADMIN_TOKEN"' in unavailable_reason(
        Target("api", "http://api.test")
    )


def test_a_fleet_in_trouble_is_counted_past_six_names() -> None:
    rows = tuple(
        ComponentRow(f"api-{n}", "", f"API {n}", Status.DEGRADED, checked_at=NOW) for n in range(9)
    )
    detail = summarize(Overview(NOW, rows)).detail
    assert detail.startswith("API 0 degraded · API 1 degraded")
    assert "API 5 degraded · 3 more targets not healthy" in detail
    assert "API 6" not in detail
