"""The daemon against a fake backend: every kind of failure is data, incidents and alerts follow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.config import MonitorConfig, parse_config
from monitor.daemon import MonitorDaemon
from monitor.store import IncidentState, Status
from shared.resilience.testing import FakeClock
from tests.monitor.fake_backend import FakeBackend, detailed

ENV = {"QUESTCITY_MONITOR_TOKEN": "operator-token"}


def config_for(tmp_path: Path, extra: str = "") -> MonitorConfig:
    return parse_config(
        f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[incidents]
open_after = 2
resolve_after = 2

[alerts]
unreachable_for = 30

[[targets]]
name = "questcity-api"
url = "http://backend.test"
interval = 10
timeout = 5
token_env = "QUESTCITY_MONITOR_TOKEN"
display_name = "QuestCity API"
services = {{ database = "Quests", s3 = "Photos" }}
{extra}
""",
        tmp_path / "monitor.toml",
    )


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=1_800_000_000.0)


@pytest.fixture
async def daemon(
    tmp_path: Path, backend: FakeBackend, clock: FakeClock
) -> AsyncIterator[MonitorDaemon]:
    daemon = MonitorDaemon(
        config_for(tmp_path),
        clock=clock,  # manual: checks are driven one at a time; batching is tested with the store
        write_window=0.0,
        transport=backend.transport,
        environ=ENV,
    )
    await daemon.prepare()
    yield daemon
    await daemon.stop()


async def check(daemon: MonitorDaemon, clock: FakeClock, *, advance: float = 10.0) -> Status:
    record = await daemon.check_target(daemon.config.targets[0])
    await clock.advance(advance)
    return record.status


async def test_a_healthy_target_is_stored_with_its_services(
    daemon: MonitorDaemon, backend: FakeBackend, clock: FakeClock
) -> None:
    assert await check(daemon, clock) is Status.HEALTHY
    latest = await daemon.reader.latest("questcity-api")
    assert latest is not None
    record = latest.record
    assert record.http_status == 200 and record.error is None
    database = {s.service: s for s in record.services}["database"]
    assert (database.status, database.breaker_state, database.response_ms) == (
        Status.HEALTHY,
        "closed",
        3.5,
    )
    assert database.details["details"] == {
        "size": 20,
        "checked_out": 1,
        "overflow": 0,
        "exhausted_total": 0,
    }
    assert backend.requests[0].url.path == "/api/v1/health/detailed"
    assert backend.requests[0].headers["authorization"] == "Bearer operator-token"
    names = [(c.service, c.display_name) for c in await daemon.reader.components()]
    assert names == [("", "QuestCity API"), ("database", "Quests"), ("s3", "Photos")]


async def test_without_a_token_the_public_summary_is_read(
    tmp_path: Path, backend: FakeBackend, clock: FakeClock
) -> None:
    daemon = MonitorDaemon(
        config_for(tmp_path), clock=clock, write_window=0.0, transport=backend.transport, environ={}
    )
    await daemon.prepare()
    try:
        record = await daemon.check_target(daemon.config.targets[0])
    finally:
        await daemon.stop()
    assert record.status is Status.HEALTHY
    assert record.services == ()
    assert [r.url.path for r in backend.requests] == ["/api/v1/health/"]


@pytest.mark.parametrize(
    ("mode", "error", "http_status"),
    [
        ("dead", "connection refused", None),
        ("slow", "timeout", None),
        ("garbage", "invalid JSON", 200),
        ("500", "invalid JSON", 500),
    ],
)
async def test_a_failed_probe_is_data_with_a_sanitised_error(
    daemon: MonitorDaemon,
    backend: FakeBackend,
    clock: FakeClock,
    mode: str,
    error: str,
    http_status: int | None,
) -> None:
    backend.mode = mode
    assert await check(daemon, clock) is Status.UNREACHABLE
    latest = await daemon.reader.latest("questcity-api")
    assert latest is not None
    assert (latest.record.error, latest.record.http_status) == (error, http_status)
    assert "10.0.0.7" not in str(latest.record)


async def test_an_outage_opens_an_incident_and_recovery_resolves_it(
    daemon: MonitorDaemon, backend: FakeBackend, clock: FakeClock
) -> None:
    await check(daemon, clock)
    backend.document = detailed(status="degraded", s3="unhealthy", s3_breaker="open")
    await check(daemon, clock)
    assert await daemon.reader.incidents(state=IncidentState.OPEN) == []
    await check(daemon, clock)
    # One cause, one incident (#14): S3 down, listing S3 and the API it degrades.
    (incident,) = await daemon.reader.incidents(state=IncidentState.OPEN)
    assert (incident.service, incident.title) == ("s3", "Partial outage: Photos")
    assert incident.impact is Status.UNHEALTHY
    assert [(c.service, c.status) for c in incident.components] == [
        ("s3", Status.UNHEALTHY),
        ("", Status.DEGRADED),
    ]
    backend.document = detailed()
    await check(daemon, clock)
    assert len(await daemon.reader.incidents(state=IncidentState.OPEN)) == 1
    await check(daemon, clock)
    assert await daemon.reader.incidents(state=IncidentState.OPEN) == []
    resolved = await daemon.reader.incident(incident.id)
    assert resolved is not None and resolved.state is IncidentState.RESOLVED
    assert [(e.kind, e.status) for e in resolved.events] == [
        ("opened", Status.UNHEALTHY),
        ("state_change", Status.HEALTHY),
        ("resolved", Status.HEALTHY),
    ]
    assert resolved.events[1].text == "Photos is now healthy."


async def test_an_unreachable_target_alerts_after_open_after_checks_and_resolves_after_hold_down(
    daemon: MonitorDaemon, backend: FakeBackend, clock: FakeClock
) -> None:
    """Issue #14: ``target_unreachable`` pages after ``open_after`` (2) unreachable checks in a
    row, before ``unreachable_for`` (30 s) has run out, and resolves once the target has been
    reachable for the hold-down (30 s by default), not at the first good check."""
    await check(daemon, clock)
    backend.mode = "dead"
    await check(daemon, clock)  # one unreachable check: not yet
    assert await daemon.reader.alerts() == []
    await check(daemon, clock)  # two in a row, 10 s in
    (alert,) = await daemon.reader.alerts()
    assert (alert.rule, alert.target) == ("target_unreachable", "questcity-api")
    assert "connection refused" in alert.summary
    backend.mode = "healthy"
    for _ in range(3):  # reachable for 0, 10, 20 s: within the hold-down
        await check(daemon, clock)
        assert len(await daemon.reader.alerts()) == 1
    await check(daemon, clock)  # 30 s
    assert await daemon.reader.alerts() == []
    (resolved,) = await daemon.reader.alerts(active_only=False)
    assert resolved.resolved_at is not None


async def test_a_restarted_daemon_picks_up_open_incidents_and_alerts(
    tmp_path: Path, backend: FakeBackend, clock: FakeClock
) -> None:
    first = MonitorDaemon(
        config_for(tmp_path),
        clock=clock,
        write_window=0.0,
        transport=backend.transport,
        environ=ENV,
    )
    await first.prepare()
    backend.mode = "dead"
    for _ in range(5):
        await check(first, clock)
    await first.stop()
    second = MonitorDaemon(
        config_for(tmp_path),
        clock=clock,
        write_window=0.0,
        transport=backend.transport,
        environ=ENV,
    )
    await second.prepare()
    try:
        backend.mode = "healthy"
        for _ in range(4):  # the resumed alert resolves after the 30 s hold-down
            await check(second, clock)
        assert await second.reader.incidents(state=IncidentState.OPEN) == []
        assert await second.reader.alerts() == []
        assert len(await second.reader.incidents()) == 1, "resumed, not opened twice"
    finally:
        await second.stop()
