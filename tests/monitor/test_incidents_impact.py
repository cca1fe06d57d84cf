"""monitor.impact: the one rule for conditions, incident impact and the words of titles and
bodies (issue #14)."""

from __future__ import annotations

import itertools

import pytest

from monitor.impact import Condition, describe, incident_impact
from monitor.store import IncidentComponent, ServiceSample, Status
from statuspage import vocabulary

API = "questcity-api"
NAMES = {"": "QuestCity API", "database": "Database", "s3": "Photos"}


def name(target: str, service: str) -> str:
    return NAMES[service]


@pytest.mark.parametrize(
    ("status", "critical", "condition", "api", "indicator"),
    [
        (Status.HEALTHY, True, Condition.OPERATIONAL, "operational", "none"),
        (Status.DEGRADED, True, Condition.DEGRADED, "degraded_performance", "minor"),
        (Status.UNHEALTHY, False, Condition.PARTIAL, "partial_outage", "major"),
        (Status.UNHEALTHY, True, Condition.MAJOR, "major_outage", "critical"),
        (Status.UNREACHABLE, False, Condition.MAJOR, "major_outage", "critical"),
        (Status.UNKNOWN, True, Condition.NO_DATA, None, "none"),
    ],
)
def test_a_components_condition(
    status: Status, critical: bool, condition: Condition, api: str | None, indicator: str
) -> None:
    assert Condition.of(status, critical=critical) is condition
    assert condition.indicator.value == indicator
    if api is not None:
        assert condition.api.value == api


def test_the_status_page_speaks_the_same_values() -> None:
    assert vocabulary.Condition is Condition
    assert vocabulary.Condition.of(Status.UNHEALTHY) is Condition.PARTIAL


def test_a_target_unhealthy_because_a_critical_service_is_down_is_a_major_outage() -> None:
    database = IncidentComponent(API, "database", Status.UNHEALTHY, True)
    target = IncidentComponent(API, "", Status.UNHEALTHY)
    s3 = IncidentComponent(API, "s3", Status.UNHEALTHY, False)
    assert incident_impact([database, target]) is Condition.MAJOR
    assert describe([database, target], name).affected[1].condition is Condition.MAJOR
    assert incident_impact([s3, target]) is Condition.PARTIAL, "S3 is not critical"


def test_the_example_of_the_brief() -> None:
    words = describe(
        [
            IncidentComponent(API, "database", Status.UNHEALTHY, True),
            IncidentComponent(API, "", Status.UNHEALTHY),
        ],
        name,
    )
    assert words.title == "Major outage: Database"
    assert words.body == (
        "Database is unavailable (major outage). Also affected: QuestCity API (major outage)."
    )


STATUSES = (Status.DEGRADED, Status.UNHEALTHY, Status.UNREACHABLE)


@pytest.mark.parametrize(
    ("cause", "cause_critical", "target"),
    list(itertools.product(STATUSES, (False, True), (None, *STATUSES))),
)
def test_the_titles_word_is_always_the_bodys(
    cause: Status, cause_critical: bool, target: Status | None
) -> None:
    listed = [IncidentComponent(API, "database", cause, cause_critical)]
    if target is not None:
        listed.append(IncidentComponent(API, "", target))
    words = describe(listed, name)
    word, _, subject = words.title.partition(": ")
    assert subject == "Database"
    assert word == words.impact.word
    assert word.lower() in words.body
    assert words.impact is Condition.worst(a.condition for a in words.affected)
    others = {c.word.lower() for c in Condition if c.value > words.impact.value}
    assert not any(other in words.body for other in others), "nothing worse than the title"


def test_a_sample_says_whether_its_service_is_critical() -> None:
    from monitor.impact import sample_critical

    assert sample_critical(ServiceSample("database", Status.HEALTHY, details={"critical": True}))
    assert (
        sample_critical(ServiceSample("s3", Status.HEALTHY, details={"critical": False})) is False
    )
    assert sample_critical(ServiceSample("s3", Status.HEALTHY)) is None
    assert sample_critical(ServiceSample("s3", Status.HEALTHY, details={"critical": "yes"})) is None
