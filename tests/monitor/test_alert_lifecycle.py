"""An alert's life (issue #14), on the real SQLite store and the check clock (every check
carries its own timestamp; nothing here waits): its text follows the figures, it resolves only
after the hold-down, a flapping outage is one alert, a critical service down pages within
``open_after`` checks, old failures in a window do not hold a rate alert, silences hold notices
and release them, an ack stops reminders, and conditions judged outside the engine
(``report``) live the same life."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from monitor.alerts import AlertEngine
from monitor.config import AlertRules, Target
from monitor.notifiers import AlertNotice, Dispatcher
from monitor.store import (
    Alert,
    AlertState,
    CheckRecord,
    HistoryReader,
    ServiceSample,
    Status,
)
from monitor.store.writer import HistoryWriter
from shared.resilience.testing import settle
from tests.monitor.test_alerts import engine_of, store

T0 = 1_800_000_000.0
API = Target(
    "api",
    "http://api.test",
    display_name="QuestCity API",
    services={"database": "Database", "s3": "Photos and avatars"},
)


class Recording:
    """A sink; with ``repeat_every`` it gets reminders too."""

    def __init__(self, repeat_every: float | None = None) -> None:
        self.notices: list[AlertNotice] = []
        self.repeat_every = repeat_every

    async def send(self, notice: AlertNotice) -> None:
        self.notices.append(notice)

    def states(self, rule: str | None = None) -> list[str]:
        return [
            f"{n.state}#{n.reminder}" if n.reminder else n.state
            for n in self.notices
            if rule is None or n.rule == rule
        ]


Store = tuple[HistoryWriter, HistoryReader]
__all__ = ["store"]  # the fixture, shared with the alert engine's own tests


def database(up: bool, error: str = "connection refused") -> ServiceSample:
    if up:
        return ServiceSample("database", Status.HEALTHY, 3.0, details={"critical": True})
    return ServiceSample(
        "database",
        Status.UNHEALTHY,
        None,
        consecutive_failures=1,
        details={"critical": True, "last_error": error},
    )


def s3(successes: int, failures: int, *, breaker: str = "closed") -> ServiceSample:
    counters = {"successful_calls": successes, "failed_calls": failures, "rejected_calls": 0}
    status = Status.HEALTHY if breaker == "closed" else Status.DEGRADED
    return ServiceSample(
        "s3",
        status,
        4.0,
        breaker_state=breaker,
        details={"critical": False, "circuit_breaker": counters},
    )


def check(at: float, *services: ServiceSample, status: Status = Status.HEALTHY) -> CheckRecord:
    return CheckRecord("api", T0 + at, status, 10.0, 200, None, services)


def engine(store: Store, sink: Recording, rules: AlertRules, **config: int) -> AlertEngine:
    writer, reader = store
    return engine_of(rules, writer, Dispatcher([sink]), reader, targets=(API,), **config)


async def run(alerts: AlertEngine, *checks: CheckRecord) -> None:
    for record in checks:
        await alerts.observe(record)
    await settle()


async def active(store: Store, rule: str) -> list[Alert]:
    return [a for a in await store[1].alerts(active_only=True) if a.rule == rule]


async def test_a_firing_alert_s_text_follows_the_figures_without_a_notice(store: Store) -> None:
    """The issue's "31 % of S3 operations failing" for 7 minutes while S3 was 100 % down."""
    sink = Recording()
    alerts = engine(store, sink, AlertRules(window=300.0))
    ok, failed = 0, 0
    healthy = []
    for t in range(0, 60, 10):
        ok += 10
        healthy.append(check(t, s3(ok, failed)))
    await run(alerts, *healthy)
    down = []
    for t in range(60, 120, 10):
        failed += 10
        down.append(check(t, s3(ok, failed, breaker="open" if t >= 90 else "closed")))
    await run(alerts, *down[:3])
    (alert,) = await active(store, "s3_failure_rate")
    first = alert.summary
    assert first == (
        "QuestCity API / Photos and avatars: 100% now, 38% of S3 operations failing over the "
        "last 5 min"
    )
    await run(alerts, *down[3:])
    (alert,) = await active(store, "s3_failure_rate")
    assert alert.summary == (
        "QuestCity API / Photos and avatars: 100% now, 55% of S3 operations failing over the "
        "last 5 min"
    )
    assert alert.updated_at == T0 + 110
    assert alerts.firing[("s3_failure_rate", "api", "s3")] == alert.summary
    assert sink.states("s3_failure_rate") == ["firing"], "a text change owes no notice"
    (notice,) = sink.notices
    assert (notice.component, notice.name, notice.summary) == (
        "api/s3",
        "QuestCity API / Photos and avatars",
        first,
    )


async def test_resolved_only_after_the_hold_down_with_the_last_figures(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(breaker_open_for=0.0, hold_down=30.0))
    await run(alerts, check(0, s3(10, 0, breaker="open")), check(10, s3(10, 0, breaker="open")))
    assert sink.states("breaker_open") == ["firing"]
    await run(alerts, *[check(t, s3(20, 0)) for t in (20, 30, 40)])
    assert len(await active(store, "breaker_open")) == 1, "clear for 20 s of 30"
    assert sink.states("breaker_open") == ["firing"]
    await run(alerts, check(50, s3(20, 0)))
    assert await active(store, "breaker_open") == []
    assert sink.states("breaker_open") == ["firing", "resolved"]
    resolved = sink.notices[-1]
    assert (
        resolved.summary
        == "QuestCity API / Photos and avatars: circuit breaker open since 08:00:00 UTC"
    )
    assert resolved.at == T0 + 50
    (alert,) = [a for a in await store[1].alerts(active_only=False) if a.rule == "breaker_open"]
    assert (alert.resolved_at, alert.summary) == (T0 + 50, resolved.summary)


async def test_a_flapping_outage_is_one_firing_and_one_resolved(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(breaker_open_for=0.0, hold_down=30.0))
    flapping = [
        check(t, s3(10, 0, breaker="open" if (t // 10) % 2 == 0 else "closed"))
        for t in range(0, 120, 10)
    ]
    await run(alerts, *flapping)
    await run(alerts, *[check(t, s3(10, 0)) for t in range(120, 160, 10)])
    assert sink.states("breaker_open") == ["firing", "resolved"]
    assert len(await store[1].alerts(active_only=False)) == 1


async def test_a_critical_service_down_pages_within_open_after_checks(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(), open_after=3)
    s3_down = ServiceSample("s3", Status.UNHEALTHY, None, details={"critical": False})
    await run(alerts, check(0, database(False), s3_down), check(10, database(False), s3_down))
    assert sink.notices == [], "2 checks of 3"
    await run(alerts, check(20, database(False), s3_down))
    (notice,) = [n for n in sink.notices if n.rule == "service_down"]
    assert (notice.state, notice.at, notice.component, notice.name) == (
        "firing",
        T0 + 20,
        "api/database",
        "QuestCity API / Database",
    )
    assert notice.summary == (
        "QuestCity API / Database down since 08:00:00 UTC (connection refused)"
    )
    assert not [n for n in sink.notices if n.service == "s3" and n.rule == "service_down"], (
        "a service the backend does not mark critical is not paged as down"
    )
    await run(alerts, check(30, database(False, "timeout"), s3_down))
    (alert,) = await active(store, "service_down")
    assert alert.summary == "QuestCity API / Database down since 08:00:00 UTC (timeout)"


async def test_target_unreachable_after_unreachable_for_when_it_comes_before_open_after(
    store: Store,
) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(unreachable_for=60.0), open_after=5)

    def gone(at: float) -> CheckRecord:
        return CheckRecord("api", T0 + at, Status.UNREACHABLE, None, None, "ConnectTimeout", ())

    await run(alerts, *[gone(t) for t in (0, 20, 40)])
    assert sink.notices == []
    await run(alerts, gone(60))  # 4 checks, but 60 s
    (notice,) = sink.notices
    assert notice.summary == (
        "QuestCity API: health API not answering since 08:00:00 UTC (ConnectTimeout)"
    )
    assert (notice.component, notice.name) == ("api", "QuestCity API")


async def test_old_failures_in_the_window_do_not_hold_a_rate_alert(store: Store) -> None:
    """Recovered at 70 s, with a 5-minute window still more than half failures: the alert
    resolves after the hold-down, not once the window has drained (minutes later)."""
    sink = Recording()
    alerts = engine(store, sink, AlertRules(window=300.0, hold_down=30.0))
    failing = ServiceSample("s3", Status.UNHEALTHY, None, consecutive_failures=3)
    await run(alerts, *[check(t, failing) for t in range(0, 70, 10)])
    assert sink.states("health_check_failure_rate") == ["firing"]
    healthy = ServiceSample("s3", Status.HEALTHY, 4.0)
    await run(alerts, *[check(t, healthy) for t in range(70, 100, 10)])
    assert sink.states("health_check_failure_rate") == ["firing"], "within the hold-down"
    await run(alerts, check(100, healthy))  # 7 of the last 11 checks failed: still > 50 %
    assert sink.states("health_check_failure_rate") == ["firing", "resolved"]


async def test_the_s3_rate_ends_with_the_failures_not_with_the_window(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(window=300.0, hold_down=0.0))
    await run(alerts, check(0, s3(100, 0)), check(10, s3(100, 50)), check(20, s3(100, 100)))
    assert sink.states("s3_failure_rate") == ["firing"]
    await run(alerts, check(30, s3(110, 100)))  # the latest step: 10 calls, none failed
    assert sink.states("s3_failure_rate") == ["firing", "resolved"]


async def test_a_silence_holds_the_notice_and_its_end_releases_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    writer, reader = store
    sink = Recording()
    alerts = engine(store, sink, AlertRules())
    await writer.add_silence("api/database", T0, T0 + 45, "alice", "migrating")
    with caplog.at_level(logging.INFO, logger="monitor.alerts"):
        await run(alerts, check(0, database(False)), check(10, database(False)))
    (alert,) = await active(store, "service_down")
    assert sink.notices == [], "recorded, not sent"
    assert await reader.unnotified_alerts() == [], "its notice handled: a successor sends none"
    held = [r for r in caplog.records if getattr(r, "event", "") == "alert_silenced"]
    assert [(getattr(r, "alert_id", None), getattr(r, "silence", None)) for r in held] == [
        (alert.id, 1)
    ]
    await run(alerts, check(20, database(False)), check(40, database(False)))
    assert sink.notices == []
    await run(alerts, check(50, database(False)))  # the silence ended at 45, still down
    (notice,) = sink.notices
    assert (notice.state, notice.alert_id, notice.at) == ("firing", alert.id, T0 + 10)
    assert notice.summary == (
        "QuestCity API / Database down since 08:00:00 UTC (connection refused)"
    )
    await run(alerts, *[check(t, database(True)) for t in range(60, 100, 10)])
    assert sink.states() == ["firing", "resolved"]


async def test_an_alert_that_resolves_under_its_silence_sends_nothing(store: Store) -> None:
    writer, reader = store
    sink = Recording()
    alerts = engine(store, sink, AlertRules(hold_down=0.0))
    # A target's key silences its services too; the silence comes in within 5 s of checks.
    await run(alerts, check(0, database(True)))
    await writer.add_silence("api", T0 + 1, T0 + 3600, "bob", None)
    await run(alerts, *[check(t, database(False)) for t in (10, 20, 30)])
    await run(alerts, check(40, database(True)))
    assert sink.notices == []
    assert await active(store, "service_down") == []
    assert await reader.unnotified_alerts() == []


async def test_reminders_until_acknowledged(store: Store) -> None:
    writer, _ = store
    sink = Recording(repeat_every=60.0)
    alerts = engine(store, sink, AlertRules())
    await run(alerts, *[check(t, database(False)) for t in range(0, 140, 10)])
    assert sink.states() == ["firing", "firing#1", "firing#2"]  # at 10, then 70 and 130
    (alert,) = await active(store, "service_down")
    await writer.ack_alert(alert.id, "carol", T0 + 135)
    await run(alerts, *[check(t, database(False)) for t in range(140, 400, 10)])
    assert sink.states() == ["firing", "firing#1", "firing#2"], "acked: no more reminders"
    await run(alerts, *[check(t, database(True)) for t in range(400, 440, 10)])
    assert sink.states() == ["firing", "firing#1", "firing#2", "resolved"]


async def test_no_reminders_while_silenced(store: Store) -> None:
    writer, _ = store
    sink = Recording(repeat_every=60.0)
    alerts = engine(store, sink, AlertRules())
    await run(alerts, *[check(t, database(False)) for t in range(0, 20, 10)])
    await writer.add_silence("api/database", T0 + 15, T0 + 200, "dan", None)
    await run(alerts, *[check(t, database(False)) for t in range(20, 200, 10)])
    assert sink.states() == ["firing"]
    await run(alerts, check(200, database(False)))
    assert sink.states() == ["firing", "firing#1"], "due since 70: sent as the silence ends"
    await run(alerts, *[check(t, database(False)) for t in range(210, 270, 10)])
    assert sink.states() == ["firing", "firing#1", "firing#2"], "and every 60 s after"


async def test_a_reported_condition_lives_the_same_life(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(hold_down=30.0))
    rule = "monitor_token_rejected"
    await alerts.report(rule, "api", "", "QuestCity API: the operator token was refused", T0)
    await alerts.report(rule, "api", "", "QuestCity API: the token was refused (HTTP 403)", T0 + 10)
    await settle()
    assert sink.states() == ["firing"]
    (notice,) = sink.notices
    assert (notice.component, notice.name) == ("api", "QuestCity API")
    (alert,) = await active(store, rule)
    assert alert.summary == "QuestCity API: the token was refused (HTTP 403)"
    # The target's checks do not judge it (they know nothing of tokens): still firing ...
    await run(alerts, *[check(t, database(True)) for t in range(20, 80, 10)])
    assert len(await active(store, rule)) == 1
    await alerts.report(rule, "api", "", None, T0 + 80)
    await run(alerts, check(90, database(True)), check(100, database(True)))
    assert sink.states() == ["firing"], "clear for 20 s of the 30 s hold-down"
    # ... but its hold-down runs out at the target's checks as at a report.
    await run(alerts, check(110, database(True)))
    assert sink.states() == ["firing", "resolved"]
    assert sink.notices[-1].summary == "QuestCity API: the token was refused (HTTP 403)"
    assert await active(store, rule) == []
    with pytest.raises(ValueError, match="judged by the engine"):
        await alerts.report("service_down", "api", "database", "x", T0 + 60)


async def test_a_reported_condition_returning_within_the_hold_down_is_the_same_alert(
    store: Store,
) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(hold_down=30.0))
    rule = "monitor_checks_missed"
    for at, summary in ((0, "missed"), (10, None), (20, "missed again"), (30, None), (70, None)):
        await alerts.report(rule, "api", "", summary, T0 + at)
    await settle()
    assert sink.states() == ["firing", "resolved"]
    assert len(await store[1].alerts(active_only=False)) == 1


async def test_a_notice_of_no_stored_alert_goes_straight_out(store: Store) -> None:
    sink = Recording()
    dispatcher = Dispatcher([sink])
    writer, reader = store
    alerts = engine_of(AlertRules(), writer, dispatcher, reader, targets=(API,))
    alerts.announce_unstored(
        "monitor_store_unwritable", "@monitor", "", "firing", "store failing\n(locked)", T0
    )
    await dispatcher.drain()
    (notice,) = sink.notices
    assert (notice.alert_id, notice.component, notice.name, notice.summary) == (
        None,
        "@monitor",
        "@monitor",
        "store failing (locked)",
    )
    assert await reader.alerts(active_only=False) == []


async def test_a_critical_service_down_is_one_page_not_one_per_rule(store: Store) -> None:
    """Its breaker open for minutes and its failed health checks are the same cause."""
    sink = Recording()
    alerts = engine(store, sink, AlertRules(breaker_open_for=300.0, hold_down=30.0))
    down = ServiceSample(
        "database",
        Status.UNHEALTHY,
        None,
        consecutive_failures=5,
        breaker_state="open",
        details={"critical": True, "last_error": "connection refused"},
    )
    await run(alerts, *[check(t, down) for t in range(0, 400, 10)])
    await run(alerts, *[check(t, database(True)) for t in range(400, 440, 10)])
    assert [(n.rule, n.state) for n in sink.notices] == [
        ("service_down", "firing"),
        ("service_down", "resolved"),
    ]


async def test_a_successor_releases_a_notice_its_predecessor_held(store: Store) -> None:
    writer, reader = store
    first = Recording()
    await writer.add_silence("api/database", T0, T0 + 45, "erin", None)
    await run(engine(store, first, AlertRules()), *[check(t, database(False)) for t in (0, 10)])
    assert first.notices == []
    second = Recording()
    successor = engine(store, second, AlertRules())
    await successor.resume(reader, at=T0 + 20)
    await run(successor, check(30, database(False)))
    assert second.notices == [], "still silenced"
    await run(successor, check(50, database(False)))
    assert second.states() == ["firing"], "held since it fired: owed once the silence ended"


async def test_a_component_already_paged_is_not_paged_again_by_another_rule(store: Store) -> None:
    """S3 down for 6 minutes: its failure rate pages at once; its failed health checks (past
    half the window) and its breaker open for 5 minutes are the same cause, not two more pages.
    One resolved notice when it recovers."""
    sink = Recording()
    alerts = engine(store, sink, AlertRules(window=300.0, hold_down=30.0))
    ok, failed = 0, 0
    healthy = []
    for t in range(0, 300, 10):
        ok += 10
        healthy.append(check(t, s3(ok, failed)))
    await run(alerts, *healthy)
    down = []
    for t in range(300, 660, 10):
        failed += 10
        sample = s3(ok, failed, breaker="open")
        down.append(check(t, replace(sample, status=Status.UNHEALTHY, consecutive_failures=1)))
    await run(alerts, *down)
    assert [(n.rule, n.state) for n in sink.notices] == [("s3_failure_rate", "firing")]
    recovered = []
    for t in range(660, 700, 10):
        ok += 10
        recovered.append(check(t, s3(ok, failed)))
    await run(alerts, *recovered)
    assert [(n.rule, n.state) for n in sink.notices] == [
        ("s3_failure_rate", "firing"),
        ("s3_failure_rate", "resolved"),
    ]


async def test_a_service_down_is_written_once_and_again_only_when_its_error_changes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running count in the text ("down for 57 checks") was one store write per check per
    down component: 100 writes a second with 1,000 targets down. The text says since when, and
    changes (is written) only with a figure that matters: the error."""
    writer, _ = store
    updates: list[str] = []
    update_alert = writer.update_alert

    async def counted(alert_id: int, summary: str, at: float) -> None:
        updates.append(summary)
        await update_alert(alert_id, summary, at)

    monkeypatch.setattr(writer, "update_alert", counted)
    sink = Recording()
    alerts = engine(store, sink, AlertRules(), open_after=3)
    await run(alerts, *[check(t, database(False)) for t in range(0, 600, 10)])
    assert sink.states() == ["firing"]
    assert updates == [], "60 checks of the same outage: not one re-write"
    await run(alerts, *[check(t, database(False, "timeout")) for t in range(600, 700, 10)])
    assert updates == ["QuestCity API / Database down since 08:00:00 UTC (timeout)"]
    (alert,) = await active(store, "service_down")
    assert alert.summary == updates[0]


def test_since_says_the_date_once_the_outage_is_a_day_old() -> None:
    from monitor.alerting.rules import began

    assert began(T0 + 3, T0 + 86_399) == "08:00:03 UTC"
    assert began(T0 + 3, T0 + 86_403) == "2027-01-15 08:00 UTC"


async def test_a_successor_holds_an_owed_notice_a_silence_covers_and_sends_it_when_it_ends(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The predecessor stored the alert and died before sending its notice; meanwhile someone
    silenced the component. The successor does not page at takeover: it holds the notice
    (marked, logged) and sends it once the silence ends, if the alert still fires."""
    writer, reader = store
    alert_id = await writer.fire_alert(
        "service_down", "api", "database", "QuestCity API / Database down", T0 + 10
    )
    await writer.add_silence("api/database", T0 + 15, T0 + 100, "erin", "failover")
    sink = Recording()
    successor = engine(store, sink, AlertRules())
    with caplog.at_level(logging.INFO, logger="monitor.alerts"):
        await successor.resume(reader, at=T0 + 20)
        await settle()
    assert sink.notices == [], "silenced: not sent at takeover"
    assert await reader.unnotified_alerts() == [], "handled: a third monitor sends none either"
    held = [r for r in caplog.records if getattr(r, "event", "") == "alert_silenced"]
    assert [getattr(r, "alert_id", None) for r in held] == [alert_id]
    await run(successor, *[check(t, database(False)) for t in range(30, 100, 10)])
    assert sink.notices == []
    await run(successor, check(100, database(False)))
    assert sink.states() == ["firing"], "the silence ended while it fires: owed, sent"


async def test_a_resolved_notice_owed_under_a_silence_is_not_sent_at_takeover(
    store: Store,
) -> None:
    writer, reader = store
    alert_id = await writer.fire_alert("service_down", "api", "database", "down", T0 + 10)
    await writer.mark_notified(alert_id, AlertState.FIRING)
    await writer.resolve_alert(alert_id, T0 + 50, "down")
    await writer.add_silence("api", T0 + 40, T0 + 3600, "erin", None)
    sink = Recording()
    await engine(store, sink, AlertRules()).resume(reader, at=T0 + 60)
    await settle()
    assert sink.notices == []
    assert await reader.unnotified_alerts() == []


async def test_the_first_reminder_after_a_takeover_comes_repeat_every_after_it(
    store: Store,
) -> None:
    """The predecessor died before sending the firing notice (fired long ago): the successor
    sends it at takeover, and its first reminder comes repeat_every later, not at once."""
    writer, reader = store
    await writer.fire_alert(
        "service_down", "api", "database", "QuestCity API / Database down", T0 + 10
    )
    sink = Recording(repeat_every=60.0)
    successor = engine(store, sink, AlertRules())
    await successor.resume(reader, at=T0 + 600)
    await run(successor, *[check(t, database(False)) for t in range(600, 660, 10)])
    assert sink.states() == ["firing"], "re-sent at takeover; no reminder on its heels"
    await run(successor, check(660, database(False)))
    assert [n.state for n in sink.notices] == ["firing", "firing"]
    assert sink.notices[1].reminder > 0


async def test_an_unreachable_target_does_not_resolve_its_services_alerts(store: Store) -> None:
    """Unknown is not healthy: with the backend not answering nothing is seen of the database,
    so its service_down neither resolves (a false RESOLVED) nor pages again when it answers."""
    sink = Recording()
    alerts = engine(store, sink, AlertRules(hold_down=30.0, unreachable_for=600.0), open_after=3)
    await run(alerts, *[check(t, database(False)) for t in (0, 10, 20)])
    assert sink.states("service_down") == ["firing"]

    def gone(at: float) -> CheckRecord:
        return CheckRecord("api", T0 + at, Status.UNREACHABLE, None, None, "ConnectTimeout", ())

    await run(alerts, *[gone(t) for t in range(30, 130, 10)])  # 100 s > the hold-down
    assert sink.states("service_down") == ["firing"], "nothing seen: no RESOLVED"
    assert len(await active(store, "service_down")) == 1
    await run(alerts, *[check(t, database(False)) for t in (130, 140, 150)])
    assert sink.states("service_down") == ["firing"], "still down when it answers: no page"
    (alert,) = await active(store, "service_down")
    assert "since 08:00:00 UTC" in alert.summary, "the outage's start, not the backend's return"
    await run(alerts, *[check(t, database(True)) for t in range(160, 220, 10)])
    assert sink.states("service_down") == ["firing", "resolved"]


async def test_a_service_missing_from_the_answer_is_not_clearing(store: Store) -> None:
    sink = Recording()
    alerts = engine(store, sink, AlertRules(hold_down=30.0), open_after=2)
    await run(alerts, check(0, database(False)), check(10, database(False)))
    await run(alerts, *[check(t, s3(10, 0)) for t in range(20, 120, 10)])  # no database in it
    assert sink.states("service_down") == ["firing"]
    await run(alerts, *[check(t, database(True)) for t in range(120, 160, 10)])
    assert sink.states("service_down") == ["firing", "resolved"]


async def test_one_cause_one_page_holds_while_another_rule_still_holds(store: Store) -> None:
    """The breaker pages; it closes while the health checks still fail. Not RESOLVED (breaker)
    then FIRING (health checks) for one outage: the page holds, in the holding rule's words,
    and resolves once neither holds for the hold-down."""
    sink = Recording()
    alerts = engine(store, sink, AlertRules(breaker_open_for=0.0, hold_down=30.0))

    def database_failing(breaker: str) -> ServiceSample:
        return ServiceSample(
            "database",
            Status.UNHEALTHY,
            None,
            consecutive_failures=1,
            breaker_state=breaker,
            details={"critical": False},
        )

    await run(alerts, *[check(t, database_failing("open")) for t in range(0, 60, 10)])
    assert sink.states() == ["firing"]
    await run(alerts, *[check(t, database_failing("closed")) for t in range(60, 160, 10)])
    assert [(n.rule, n.state) for n in sink.notices] == [("breaker_open", "firing")]
    (alert,) = await active(store, "breaker_open")
    assert alert.summary == "QuestCity API / Database: 16 of the last 16 health checks failed"
    healthy = ServiceSample("database", Status.HEALTHY, 3.0, details={"critical": False})
    await run(alerts, *[check(t, healthy) for t in range(160, 200, 10)])
    assert [(n.rule, n.state) for n in sink.notices] == [
        ("breaker_open", "firing"),
        ("breaker_open", "resolved"),
    ]
