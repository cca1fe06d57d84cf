"""The detail screen's figures (#14): the monitor's uptime, one figure per labelled window as the
page prints it, and the last error with its age — not the backend's own ``availability_percent``
(its last hundred checks: a different window and source) beside ``uptime 24h`` unlabelled
("availability percent 53" next to "uptime 24h 78.906")."""

from __future__ import annotations

from monitor.store import CheckRecord, ServiceSample, Status
from monitor.tui.screens.detail import DetailScreen
from tests.monitor.tui.conftest import AppFactory, Store, settle
from tests.monitor.tui.history import NOW
from tests.monitor.tui.test_keys import API_DB, SIZE, select, static_text


async def test_one_figure_per_window_and_the_error_with_its_age(
    make_app: AppFactory, store: Store
) -> None:
    database = ServiceSample(
        "database",
        Status.UNHEALTHY,
        None,
        9,
        "open",
        {
            "availability_percent": 53.0,
            "critical": True,
            "last_error": "CircuitBreakerOpenError",
            "last_error_at": NOW - 185,
        },
    )
    s3 = ServiceSample("s3", Status.HEALTHY, 7.0, 0, "closed", {})
    record = CheckRecord(
        "questcity-api", NOW - 1, Status.UNHEALTHY, 12.0, 503, None, (database, s3)
    )
    await store.writer.record_check(record)

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select(app, API_DB)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        figures = static_text(app, "#service-figures")
        row = app.screen.row

    assert "availability" not in figures
    assert "CircuitBreakerOpenError, 3 min ago" in figures
    lines = {line.split("  ")[0]: line.split()[-1] for line in figures.splitlines() if line}
    day, week, month = row.uptime
    assert (lines["uptime 24 h"], lines["uptime 7 d"], lines["uptime 30 d"]) == (
        f"{day:.2f}%",
        f"{week:.2f}%",
        f"{month:.2f}%",
    )
    assert day is not None and day < 100
