"""The alert rules of a ``[[checks]]`` entry (issue #16), on the real SQLite store and the check
clock (each run carries its own timestamp; nothing here waits): ``check_failing`` fires after
``open_after`` runs or ``unreachable_for`` seconds, whichever comes first, says what failed and
follows it, and resolves after the hold-down; ``certificate_expiring`` fires at once on a healthy
``tls`` run with a warning and never holds back the page of the same certificate failing; the
health API's rules never judge a check."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerting.rules import CERTIFICATE_EXPIRING, CHECK_FAILING, RULES, Names
from monitor.alerts import AlertEngine
from monitor.checks.spec import Check, CheckKind, HttpSettings, Outcome, TlsSettings
from monitor.config import AlertRules, IncidentRules, MonitorConfig
from monitor.incidents import IncidentTracker
from monitor.notifiers import AlertNotice, Dispatcher
from monitor.store import Alert, CheckRecord, HistoryReader, IncidentState, Status
from monitor.store.writer import HistoryWriter
from shared.resilience.testing import settle
from tests.monitor.test_alerts import store

__all__ = ["store"]  # the fixture: a migrated SQLite store per test

T0 = 1_800_000_000.0  # 08:00:00 UTC
FRONT_DOOR = Check(
    "front-door",
    CheckKind.HTTP,
    HttpSettings("https://user:secret@questcity.example/health?key=1"),
    public=True,
    display_name="Front door",
)
CERTIFICATE = Check(
    "front-door-tls", CheckKind.TLS, TlsSettings("questcity.example"), display_name="Certificate"
)
FAILED_503 = "[STATUS] == 200 failed: got 503"
WARNING = "certificate expires in 20 days (warn_days 30)"

Store = tuple[HistoryWriter, HistoryReader]


class Recording:
    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []

    async def send(self, notice: AlertNotice) -> None:
        self.notices.append(notice)

    def of(self, rule: str) -> list[tuple[str, str]]:
        """(state, summary) of each notice of ``rule``, in order."""
        return [(n.state, n.summary) for n in self.notices if n.rule == rule]


def config(*, open_after: int = 3, unreachable_for: float = 300.0) -> MonitorConfig:
    return MonitorConfig(
        Path("monitor.toml"),
        incidents=IncidentRules(open_after=open_after, resolve_after=2),
        alerts=AlertRules(unreachable_for=unreachable_for, hold_down=30.0),
        checks=(FRONT_DOOR, CERTIFICATE),
    )


def engine(
    store: Store, sink: Recording, *, open_after: int = 3, unreachable_for: float = 300.0
) -> AlertEngine:
    writer, reader = store
    rules = config(open_after=open_after, unreachable_for=unreachable_for)
    return AlertEngine(rules, writer, Dispatcher([sink]), reader)


def run_of(check: Check, at: float, outcome: Outcome) -> CheckRecord:
    return outcome.record(check, T0 + at)


def failing(error: str = FAILED_503) -> Outcome:
    return Outcome(Status.UNHEALTHY, 40.0, http_status=503, error=error)


HEALTHY = Outcome(Status.HEALTHY, 30.0, http_status=200)


async def observe(alerts: AlertEngine, *records: CheckRecord) -> None:
    for record in records:
        await alerts.observe(record)
    await settle()


async def active(store: Store) -> list[Alert]:
    return await store[1].alerts(active_only=True)


def test_the_engine_judges_the_check_rules_itself() -> None:
    assert {CHECK_FAILING, CERTIFICATE_EXPIRING} <= RULES
    names = Names(config())
    assert names("front-door", "") == "Front door"
    assert names("@monitor", "front-door") == "Monitor of Front door"


async def test_check_failing_fires_after_open_after_runs_follows_the_error_and_resolves(
    store: Store,
) -> None:
    sink = Recording()
    alerts = engine(store, sink, open_after=3)
    await observe(alerts, *(run_of(FRONT_DOOR, t, failing()) for t in (0, 10)))
    assert sink.notices == [], "2 failed runs of 3"
    await observe(alerts, run_of(FRONT_DOOR, 20, failing()))
    summary = f"Front door: {FAILED_503} since 08:00:00 UTC"
    assert sink.of(CHECK_FAILING) == [("firing", summary)]
    (notice,) = sink.notices
    assert (notice.component, notice.name, notice.at) == ("front-door", "Front door", T0 + 20)
    assert "secret" not in summary and "key=1" not in summary

    refused = "connection refused"
    await observe(alerts, run_of(FRONT_DOOR, 30, Outcome(Status.UNREACHABLE, None, error=refused)))
    (alert,) = await active(store)
    assert (alert.rule, alert.summary) == (
        CHECK_FAILING,
        f"Front door: {refused} since 08:00:00 UTC",
    )
    assert len(sink.notices) == 1, "a new error re-words the alert, owes no notice"

    await observe(alerts, *(run_of(FRONT_DOOR, t, HEALTHY) for t in (40, 50, 60)))
    assert len(await active(store)) == 1, "clear for 20 s of the 30 s hold-down"
    await observe(alerts, run_of(FRONT_DOOR, 70, HEALTHY))
    assert await active(store) == []
    assert [state for state, _ in sink.of(CHECK_FAILING)] == ["firing", "resolved"]


async def test_check_failing_fires_after_unreachable_for_when_that_comes_first(
    store: Store,
) -> None:
    sink = Recording()
    alerts = engine(store, sink, open_after=10, unreachable_for=60.0)
    down = Outcome(Status.UNREACHABLE, None, error="timed out after 5 s")
    await observe(alerts, run_of(FRONT_DOOR, 0, down), run_of(FRONT_DOOR, 30, down))
    assert sink.notices == []
    await observe(alerts, run_of(FRONT_DOOR, 60, down))  # 3 runs of 10, but 60 s
    assert sink.of(CHECK_FAILING) == [
        ("firing", "Front door: timed out after 5 s since 08:00:00 UTC")
    ]


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        (Outcome(Status.UNREACHABLE, None, error="connection refused"), "connection refused"),
        (Outcome(Status.UNKNOWN, None, error="QUESTCITY_DB_URL is not set"), "is not set"),
        (Outcome(Status.UNHEALTHY, 5.0), "unhealthy"),  # no error said: its status is
    ],
)
async def test_the_health_api_rules_never_judge_a_check(
    store: Store, outcome: Outcome, said: str
) -> None:
    sink = Recording()
    alerts = engine(store, sink, open_after=2)
    await observe(alerts, *(run_of(FRONT_DOOR, t, outcome) for t in (0, 10, 20)))
    (alert,) = await active(store)
    assert alert.rule == CHECK_FAILING, "never target_unreachable: a check has no health API"
    assert said in alert.summary
    assert {n.rule for n in sink.notices} == {CHECK_FAILING}


async def test_a_certificate_warning_fires_at_once_and_never_holds_back_its_failure(
    store: Store,
) -> None:
    sink = Recording()
    alerts = engine(store, sink, open_after=2)
    warned = Outcome(Status.HEALTHY, 12.0, warning=WARNING)
    await observe(alerts, run_of(CERTIFICATE, 0, warned))
    assert sink.of(CERTIFICATE_EXPIRING) == [("firing", f"Certificate: {WARNING}")]
    assert sink.of(CHECK_FAILING) == []

    # Below min_days: the check fails. The warning holds back no page (not "one cause, one
    # page"), and does not carry the outage on in its own name: it resolves after its hold-down.
    expired = failing("certificate expires in 3 days (min_days 14)")
    await observe(alerts, *(run_of(CERTIFICATE, t, expired) for t in (10, 20)))
    assert sink.of(CHECK_FAILING) == [
        (
            "firing",
            "Certificate: certificate expires in 3 days (min_days 14) since 08:00:10 UTC",
        )
    ]
    await observe(alerts, *(run_of(CERTIFICATE, t, expired) for t in (30, 40, 50)))
    assert [s for s, _ in sink.of(CERTIFICATE_EXPIRING)] == ["firing", "resolved"]
    assert sink.of(CERTIFICATE_EXPIRING)[-1][1] == f"Certificate: {WARNING}"

    # Renewed (far from warn_days): the failure resolves after its hold-down, not held up by a
    # warning either.
    await observe(alerts, *(run_of(CERTIFICATE, t, HEALTHY) for t in (60, 70, 80, 90)))
    assert await active(store) == []
    assert [s for s, _ in sink.of(CHECK_FAILING)] == ["firing", "resolved"]


async def test_a_warning_of_another_kind_is_no_certificate_alert(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink)
    await observe(alerts, run_of(FRONT_DOOR, 0, Outcome(Status.HEALTHY, 3.0, warning="odd")))
    assert sink.notices == []
    assert await active(store) == []


async def test_incidents_of_a_check_are_titled_with_its_name(store: Store) -> None:
    writer, reader = store
    tracker = IncidentTracker(config(open_after=2), writer, reader=reader)
    for t in (0, 10):
        await tracker.observe(run_of(FRONT_DOOR, t, failing()))
    (incident,) = await reader.incidents(state=IncidentState.OPEN)
    assert incident.title == "Partial outage: Front door"
    for t in (20, 30):
        await tracker.observe(run_of(FRONT_DOOR, t, HEALTHY))
    (resolved,) = await reader.incidents(with_events=True)
    assert resolved.state is IncidentState.RESOLVED
    assert resolved.events[-1].text == "Front door is operating normally."
