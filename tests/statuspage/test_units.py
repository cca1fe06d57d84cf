"""The small pieces: words, numbers, text cleaning, the sparkline, conditional requests."""

from __future__ import annotations

import gzip

import pytest

from monitor.store import Incident, IncidentEvent, IncidentState, LatencyPoint, Status
from monitor.store.models import BarSeries
from statuspage import html
from statuspage.incidents import build_incident
from statuspage.model import (
    Board,
    ComponentHistory,
    PageInfo,
    build_history,
    opaque_id,
    slugify,
)
from statuspage.responses import Output, _accepts_gzip, _matches
from statuspage.svg import sparkline
from statuspage.text import clean, iso, percent
from statuspage.vocabulary import ComponentStatus, Condition, Indicator


@pytest.mark.parametrize(
    ("status", "api", "indicator", "banner"),
    [
        (Status.HEALTHY, ComponentStatus.OPERATIONAL, Indicator.NONE, "All systems operational"),
        (
            Status.DEGRADED,
            ComponentStatus.DEGRADED_PERFORMANCE,
            Indicator.MINOR,
            "Degraded performance",
        ),
        (Status.UNHEALTHY, ComponentStatus.PARTIAL_OUTAGE, Indicator.MAJOR, "Partial outage"),
        (Status.UNREACHABLE, ComponentStatus.MAJOR_OUTAGE, Indicator.CRITICAL, "Major outage"),
    ],
)
def test_vocabulary(
    status: Status, api: ComponentStatus, indicator: Indicator, banner: str
) -> None:
    condition = Condition.of(status)
    assert (condition.api, condition.indicator, condition.banner) == (api, indicator, banner)


def test_unknown_is_not_published() -> None:
    assert not Condition.of(Status.UNKNOWN).known
    with pytest.raises(ValueError, match="no Statuspage status"):
        _ = Condition.NO_DATA.api
    assert Condition.worst([Condition.NO_DATA, Condition.OPERATIONAL]) is Condition.OPERATIONAL
    assert Condition.worst([]) is Condition.NO_DATA


@pytest.mark.parametrize(
    ("value", "shown"),
    [(100.0, "100%"), (99.996, "99.99%"), (99.5, "99.50%"), (0.0, "0.00%"), (None, "no data")],
)
def test_uptime_is_rounded_down(value: float | None, shown: str) -> None:
    assert percent(value) == shown


def test_clean() -> None:
    assert clean("a\x00b\x1b[1mc\u200b\n") == "ab[1mc\u200b"
    assert clean("x" * 300) == "x" * 199 + "…"
    assert clean("  spaced  ") == "spaced"


def test_iso() -> None:
    assert iso(1_747_224_000.25) == "2025-05-14T12:00:00.250Z"


def test_ids_are_stable_and_opaque() -> None:
    first = opaque_id("component", "questcity-api", "database")
    assert first == opaque_id("component", "questcity-api", "database")
    assert first != opaque_id("component", "questcity-api", "s3")
    assert len(first) == 12 and first.isalnum() and first.islower()
    assert "database" not in first
    assert slugify("QuestCity API (Europe)") == "questcity-api-europe"


def test_sparkline() -> None:
    start = 1_000 * 3600.0
    points = [LatencyPoint(start + h * 3600, 10.0 + h, 20.0 + h) for h in (0, 1, 2, 10, 11)]
    line = sparkline(points, start)
    assert line.count("<polyline") == 2  # seven hours without data break the line
    label = "average 15 ms, slowest hour 21 ms, slowest check 31 ms"
    assert f'aria-label="Response time over the last 24 hours: {label}"' in line
    assert sparkline([], start) == ""
    single = sparkline([LatencyPoint(start + 5 * 3600, 30.0, 30.0)], start)
    assert single.count("<polyline") == 1


def test_incident_of_a_component_gone_from_the_catalogue() -> None:
    incident = Incident(
        id=7,
        target="questcity-api",
        service="secret-internal-name",
        state=IncidentState.OPEN,
        impact=Status.DEGRADED,
        title="secret-internal-name slow",
        opened_at=10.0,
        resolved_at=None,
        updated_at=10.0,
        events=(IncidentEvent(10.0, "opened", Status.DEGRADED, "x", True),),
    )
    view = build_incident(incident, {})
    assert view.name == "Degraded performance: a service of questcity-api"
    assert "secret" not in view.name and "secret" not in view.updates[0].body
    assert view.updates[0].affected == ()


def test_conditional_request_matching() -> None:
    assert _matches('"a"', '"a"') and _matches('W/"a"', '"a"') and _matches('"b", "a"', '"a"')
    assert _matches("*", '"a"') and not _matches('"b"', '"a"')
    assert _accepts_gzip("gzip, deflate, br") and _accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert not _accepts_gzip("gzip;q=0") and not _accepts_gzip(None) and not _accepts_gzip("br")


def test_gzip_is_deterministic() -> None:
    output = Output(b"x" * 5000, "text/plain", "no-store")
    body, etag, _ = output.gzipped()
    assert gzip.decompress(body) == b"x" * 5000
    assert Output(b"x" * 5000, "text/plain", "no-store").gzipped()[:2] == (body, etag)


def test_segments_kept_between_renders_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html, "_SEGMENT_MEMO", 10)
    renderer = html.Renderer()
    board = Board(PageInfo("QuestCity", "http://status"), 1_747_224_000.0, None, (), (), 300.0)

    def history(days: int, checks: int) -> dict[str, ComponentHistory]:
        series = BarSeries(0, 86400, [checks] * days, [checks] * days, [1] * days, [None] * days)
        return {"c": build_history(series, [], 0.0)}

    renderer.index(board, history(30, 100))
    kept = len(renderer._segments)
    renderer.index(board, history(5, 7))  # over the bound: forgotten, then these 5 drawn

    assert kept == 30
    assert len(renderer._segments) == 5
