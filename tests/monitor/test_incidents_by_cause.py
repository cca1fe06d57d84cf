"""Incidents by cause (issue #14): one incident per cause, listing every component it affects
with its worst status, worded by monitor.impact's one rule; resolved when the cause clears."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.config import MonitorConfig, parse_config
from monitor.impact import Condition, incident_impact
from monitor.incidents import IncidentTracker
from monitor.store import (
    CheckRecord,
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentState,
    ServiceSample,
    Status,
)

API = "questcity-api"
H, D, U, X = Status.HEALTHY, Status.DEGRADED, Status.UNHEALTHY, Status.UNREACHABLE


def config(tmp_path: Path) -> MonitorConfig:
    return parse_config(
        f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[incidents]
open_after = 2
resolve_after = 2

[[targets]]
name = "{API}"
url = "http://backend.test"
display_name = "QuestCity API"
services = {{ database = "Database", s3 = "Photos" }}
""",
        tmp_path / "monitor.toml",
    )


@dataclass
class FakeIncident:
    target: str
    service: str
    status: Status
    title: str
    components: list[IncidentComponent]
    events: list[IncidentEvent] = field(default_factory=list)
    impact: Status = Status.UNKNOWN
    state: IncidentState = IncidentState.OPEN
    retitled: list[str] = field(default_factory=list)


class FakeWriter:
    """The incident writes of the store's write port, kept in memory."""

    def __init__(self) -> None:
        self.incidents: dict[int, FakeIncident] = {}

    async def open_incident(
        self,
        target: str,
        service: str,
        status: Status,
        at: float,
        title: str,
        components: Sequence[IncidentComponent] = (),
    ) -> int:
        number = len(self.incidents) + 1
        self.incidents[number] = FakeIncident(
            target,
            service,
            status,
            title,
            list(components),
            [IncidentEvent(at, "opened", status, title, True)],
            impact=status,
        )
        return number

    async def set_incident_components(
        self, incident_id: int, components: Sequence[IncidentComponent], at: float
    ) -> None:
        self.incidents[incident_id].components = list(components)

    async def retitle_incident(self, incident_id: int, title: str, impact: Status) -> None:
        incident = self.incidents[incident_id]
        incident.title, incident.impact = title, impact
        incident.retitled.append(title)

    async def add_event(self, incident_id: int, event: IncidentEvent) -> None:
        self.incidents[incident_id].events.append(event)

    async def resolve_incident(self, incident_id: int, at: float, text: str) -> None:
        incident = self.incidents[incident_id]
        incident.events.append(IncidentEvent(at, "resolved", Status.HEALTHY, text, True))
        incident.state = IncidentState.RESOLVED

    def open(self) -> list[FakeIncident]:
        return [i for i in self.incidents.values() if i.state is IncidentState.OPEN]


class Checks:
    """A tracker fed one check every 10 s."""

    def __init__(self, tracker: IncidentTracker) -> None:
        self.tracker = tracker
        self.at = 1_800_000_000.0

    async def __call__(
        self, status: Status, *, database: Status = H, s3: Status = H, times: int = 1
    ) -> None:
        for _ in range(times):
            services: tuple[ServiceSample, ...] = ()
            if status is not X:  # an unreachable target says nothing of its services
                services = (
                    ServiceSample("database", database, details={"critical": True}),
                    ServiceSample("s3", s3, details={"critical": False}),
                )
            record = CheckRecord(API, self.at, status, 12.0, None, None, services)
            await self.tracker.observe(record)
            self.at += 10


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def check(tmp_path: Path, writer: FakeWriter) -> Checks:
    return Checks(IncidentTracker(config(tmp_path), writer))  # type: ignore[arg-type]


def listed(incident: FakeIncident) -> list[tuple[str, Status, bool]]:
    return [(c.service, c.status, c.critical) for c in incident.components]


async def test_s3_down_is_one_incident_listing_s3_and_the_api(
    check: Checks, writer: FakeWriter
) -> None:
    await check(H)
    await check(D, s3=U)
    assert writer.open() == [], "open_after is 2 checks"
    await check(D, s3=U, times=3)
    (incident,) = writer.open()
    assert (incident.target, incident.service) == (API, "s3")
    assert listed(incident) == [("s3", U, False), ("", D, False)]
    assert incident.title == "Partial outage: Photos"
    assert incident.events[0].kind == "opened"
    assert [e.kind for e in incident.events] == ["opened"], "no change, nothing on the timeline"


async def test_a_critical_database_down_is_one_major_outage(
    check: Checks, writer: FakeWriter
) -> None:
    await check(U, database=U, times=2)
    (incident,) = writer.open()
    assert (incident.service, incident.title) == ("database", "Major outage: Database")
    assert listed(incident) == [("database", U, True), ("", U, False)]
    assert incident_impact(incident.components) is Condition.MAJOR
    assert Condition.MAJOR.indicator.value == "critical"


async def test_database_and_s3_down_are_two_incidents_both_listing_the_api(
    check: Checks, writer: FakeWriter
) -> None:
    await check(U, database=U, s3=U, times=2)
    by_cause = {i.service: i for i in writer.open()}
    assert sorted(by_cause) == ["database", "s3"]
    assert listed(by_cause["database"]) == [("database", U, True), ("", U, False)]
    assert listed(by_cause["s3"]) == [("s3", U, False), ("", U, False)]
    assert by_cause["database"].title == "Major outage: Database"
    assert by_cause["s3"].title == "Partial outage: Photos"


async def test_a_slow_target_alone_is_one_incident_of_the_target(
    check: Checks, writer: FakeWriter
) -> None:
    await check(D, times=2)  # degraded with every service healthy: the target is the cause
    (incident,) = writer.open()
    assert (incident.service, incident.title) == ("", "Degraded performance: QuestCity API")
    assert listed(incident) == [("", D, False)]


async def test_recovery_resolves_after_resolve_after_healthy_checks_of_the_cause(
    check: Checks, writer: FakeWriter
) -> None:
    await check(D, s3=U, times=2)
    (incident,) = writer.open()
    await check(H)
    assert writer.open() == [incident]
    await check(H)
    assert writer.open() == []
    assert [(e.kind, e.status) for e in incident.events] == [
        ("opened", U),
        ("state_change", H),
        ("resolved", H),
    ]
    assert incident.events[1].text == "Photos is now healthy."
    assert incident.events[2].text == "Photos is operating normally."
    await check(H, times=5)
    assert len(writer.incidents) == 1, "nothing new after recovery"


async def test_a_growing_impact_rewrites_the_components_and_retitles(
    check: Checks, writer: FakeWriter
) -> None:
    await check(H, s3=D, times=2)  # S3 slow; the API says it is healthy
    (incident,) = writer.open()
    assert (incident.title, listed(incident)) == (
        "Degraded performance: Photos",
        [("s3", D, False)],
    )
    await check(D, s3=U)
    assert listed(incident) == [("s3", U, False), ("", D, False)]
    assert incident.retitled == ["Partial outage: Photos"]
    assert incident.impact is U
    await check(H, s3=D)  # better: the worst seen stays, no new title
    assert listed(incident) == [("s3", U, False), ("", D, False)]
    assert incident.retitled == ["Partial outage: Photos"]
    assert [e.status for e in incident.events if e.kind == "state_change"] == [U, D]


async def test_an_unreachable_target_is_its_own_cause_beside_a_service_incident(
    check: Checks, writer: FakeWriter
) -> None:
    await check(D, s3=U, times=2)
    (s3,) = writer.open()
    await check(X, times=2)
    assert sorted(i.service for i in writer.open()) == ["", "s3"]
    (target,) = (i for i in writer.open() if i.service == "")
    assert (target.title, listed(target)) == ("Major outage: QuestCity API", [("", X, False)])
    assert listed(s3) == [("s3", U, False), ("", D, False)], "not attached to S3's incident"
    assert [e.kind for e in s3.events] == ["opened"], "S3 unseen: no change on its timeline"
    await check(D, s3=U, times=2)  # back, S3 still down: the target's own cause has cleared
    assert writer.open() == [s3]
    assert target.events[-1].text.startswith("QuestCity API no longer fails on its own")
    await check(H, times=2)
    assert writer.open() == []


async def test_a_restarted_tracker_resumes_the_open_incident_by_its_cause(
    tmp_path: Path, check: Checks, writer: FakeWriter
) -> None:
    await check(U, database=U, times=2)
    (fake,) = writer.open()
    stored = Incident(
        id=1,
        target=API,
        service="database",
        state=IncidentState.OPEN,
        impact=fake.impact,
        title=fake.title,
        opened_at=check.at,
        resolved_at=None,
        updated_at=check.at,
        components=tuple(fake.components),
    )

    class Reader:
        async def incidents(self, **_: object) -> list[Incident]:
            return [stored]

    second = IncidentTracker(config(tmp_path), writer)  # type: ignore[arg-type]
    await second.resume(Reader())  # type: ignore[arg-type]
    assert second.open_causes() == {(API, "database"): 1}
    check.tracker = second
    await check(U, database=U, times=3)
    assert len(writer.incidents) == 1, "resumed, not opened twice"
    await check(H, times=2)
    assert writer.open() == []


async def test_an_incident_from_before_components_resumes_with_its_cause_listed(
    tmp_path: Path, writer: FakeWriter
) -> None:
    old = Incident(1, API, "s3", IncidentState.OPEN, U, "Photos is down", 0.0, None, 0.0)

    class Reader:
        async def incidents(self, **_: object) -> list[Incident]:
            return [old]

    tracker = IncidentTracker(config(tmp_path), writer)  # type: ignore[arg-type]
    await tracker.resume(Reader())  # type: ignore[arg-type]
    writer.incidents[1] = FakeIncident(API, "s3", U, old.title, [])
    check = Checks(tracker)
    await check(D, s3=U)
    assert listed(writer.incidents[1]) == [("s3", U, False), ("", D, False)]
