"""The banner never says "ALL SYSTEMS OPERATIONAL" beside a firing alert without saying why
(issue #14: it did for 3.3 minutes after a recovery): alerts resolving through their hold-down,
an alert still holding, and the monitor's own alerts, each with what to do."""

from __future__ import annotations

from typing import cast

from monitor.store import Alert, AlertState, CheckRecord, ServiceSample, Status
from monitor.tui.data import ComponentRow, Overview
from monitor.tui.summary import monitor_warnings, summarize
from monitor.tui.widgets.banner import Banner, MonitorLine
from shared.resilience.testing import FakeClock
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW

SIZE = (160, 40)


def _alert(rule: str, target: str, service: str, summary: str = "") -> Alert:
    return Alert(1, rule, target, service, AlertState.FIRING, summary, NOW - 300, None)


def _overview(*alerts: Alert, since: float = NOW - 12, s3: Status = Status.HEALTHY) -> Overview:
    rows = (
        ComponentRow("api", "", "API", Status.HEALTHY, since=since, checked_at=NOW - 1),
        ComponentRow("api", "database", "Database", Status.HEALTHY, since=since, checked_at=NOW),
        ComponentRow("api", "s3", "Images", s3, since=since, checked_at=NOW - 1),
    )
    return Overview(now=NOW, rows=rows, alerts=alerts, hold_down=30.0)


def test_no_alert_is_all_clear() -> None:
    summary = summarize(_overview())
    assert summary.headline == "ALL SYSTEMS OPERATIONAL"
    assert not summary.alerting


def test_resolving_alerts_say_how_far_along_the_hold_down() -> None:
    summary = summarize(
        _overview(_alert("breaker_open", "api", "database"), _alert("service_down", "api", ""))
    )
    assert summary.alerting
    assert summary.headline == (
        "Components operational — 2 alerts firing (resolving: clear for 12s of a 30s hold-down)"
    )


def test_past_the_hold_down_it_says_the_next_check_resolves_it() -> None:
    summary = summarize(_overview(_alert("breaker_open", "api", "database"), since=NOW - 45))
    assert "clear for 45s, past the 30s hold-down" in summary.headline


def test_an_alert_still_holding_is_named() -> None:
    # S3's latest sample unknown (not seen by the last check): its alert still holds.
    held = _alert("s3_failure_rate", "api", "s3", "100% of S3 operations failing")
    summary = summarize(_overview(held, s3=Status.UNKNOWN))
    assert summary.headline == (
        "Components operational — 1 alert firing (held by s3_failure_rate on api/s3: "
        "100% of S3 operations failing)"
    )


def test_a_monitor_warning_says_what_to_do() -> None:
    summary = "questcity-api: the monitor's token (T) expires in 2d: mint a new one before then"
    [line] = monitor_warnings(
        [_alert("monitor_token_expiring", "api", "", summary), _alert("breaker_open", "api", "")]
    )
    assert line == f"⚠ The monitor's operator token for api expires soon — {summary}"


def test_the_monitors_own_alert_is_no_all_clear() -> None:
    summary = summarize(_overview(_alert("monitor_token_rejected", "api", "")))
    assert summary.alerting
    assert "ALL SYSTEMS OPERATIONAL" not in summary.headline
    assert "about the monitor itself" in summary.headline


def _healthy(target: str, at: float) -> CheckRecord:
    services = tuple(
        ServiceSample(name, Status.HEALTHY, 4.0, 0, "closed") for name in ("database", "s3")
    )
    return CheckRecord(target, at, Status.HEALTHY, 20.0, 200, None, services=services)


async def test_the_banner_beside_firing_alerts_after_recovery(
    make_app: AppFactory, store: Store
) -> None:
    for target in ("questcity-api", "questcity-eu"):
        await store.writer.record_check(_healthy(target, NOW - 1))
    await store.writer.fire_alert("monitor_token_rejected", "questcity-eu", "", "", NOW - 5)
    app = make_app()
    cast(FakeClock, app.clock).jump_wall(11)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        banner = str(app.screen.query_one(Banner).render())
        assert "ALL SYSTEMS OPERATIONAL" not in banner
        assert (
            "● Components operational — 2 alerts firing (resolving: clear for 12s of a 30s "
            "hold-down)" in banner
        )
        line = app.screen.query_one(MonitorLine)
        assert line.display
        words = str(line.render())
        assert "⚠ The monitor's operator token for questcity-eu is refused" in words
        assert "mint a new one (questcity token --role operator)" in words
