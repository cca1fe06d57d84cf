"""The monitor's alerts about itself (issue #14: "monitoring goes quiet without saying so"), end to
end through the daemon on a fake clock: a fake backend, the real alert engine and store, and a
webhook receiver recording every notice. Each rule fires with a summary that says what to do, is
stored (the TUI's header reads the alerts table), and clears after the hold-down."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent

from monitor import alert_actions
from monitor.config import MonitorConfig, parse_config
from monitor.daemon import MonitorDaemon
from monitor.self_alerts import (
    CHECKS_MISSED,
    MONITOR,
    STORE_UNWRITABLE,
    TOKEN_EXPIRING,
    TOKEN_MISSING,
    TOKEN_REJECTED,
)
from monitor.store import Alert, AlertState, StoreUnavailable
from shared.resilience.testing import FakeClock, settle
from tests.monitor.fake_backend import FakeBackend, detailed
from tests.monitor.store_refusals import RefusedChecks

VARIABLE = "QUESTCITY_MONITOR_TOKEN"
HOLD_DOWN = 30
INTERVAL = 10.0
T0 = 1_800_000_000.0
DAY = 86400.0


def config_for(tmp_path: Path, replicas: str = "") -> MonitorConfig:
    return parse_config(
        f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[alerts]
hold_down = {HOLD_DOWN}
token_expiry_warning = 259200

[[targets]]
name = "questcity-api"
url = "http://backend.test"
interval = {INTERVAL:g}
timeout = 5
token_env = "{VARIABLE}"
display_name = "QuestCity API"
{replicas}

[[notifiers]]
type = "webhook"
url = "http://hooks.test/alerts"
""",
        tmp_path / "monitor.toml",
    )


class Stack:
    """The daemon, its fake backend, the webhook's notices and the environment it reads."""

    def __init__(self, tmp_path: Path, replicas: str = "") -> None:
        self.refusing: set[str] = set()
        """Replica hosts whose ``/detailed`` refuses every token (their own key, say)."""
        self.clock = FakeClock(wall_start=T0)
        self.backend = FakeBackend()
        self.notices: list[dict[str, object]] = []
        self.environ = {VARIABLE: "operator-token"}
        self.daemon = MonitorDaemon(
            config_for(tmp_path, replicas),
            clock=self.clock,
            write_window=0.0,
            transport=httpx.MockTransport(self._route),
            environ=self.environ,
        )

    def _route(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "hooks.test":
            self.notices.append(json.loads(request.content))
            return httpx.Response(204)
        if request.url.host in self.refusing and request.url.path.endswith("/detailed"):
            return httpx.Response(403)
        return self.backend.handle(request)

    async def check(self, times: int = 1) -> None:
        for _ in range(times):
            await self.daemon.check_target(self.daemon.config.targets[0])
            await settle()
            await self.clock.advance(INTERVAL)

    def sent(self, rule: str) -> list[tuple[str, str, str]]:
        """(state, component, summary) of each notice of ``rule``, in order."""
        return [
            (str(n["state"]), str(n["component"]), str(n["summary"]))
            for n in self.notices
            if n["rule"] == rule
        ]

    async def stored(self, rule: str) -> list[Alert]:
        return [a for a in await self.daemon.reader.alerts(active_only=False) if a.rule == rule]

    def fired(self, rule: str) -> str:
        """The summary of the one notice of ``rule`` sent: firing, for questcity-api."""
        [(state, component, summary)] = self.sent(rule)
        assert (state, component) == ("firing", "@monitor/questcity-api")
        return summary

    async def clears(self, rule: str) -> None:
        """Checks for the hold-down and more: ``rule``'s alert is resolved, and said so once."""
        await self.check(HOLD_DOWN // int(INTERVAL) + 2)
        assert [s for s, _, _ in self.sent(rule)] == ["firing", "resolved"]
        [alert] = await self.stored(rule)
        assert alert.state is AlertState.RESOLVED


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = Stack(tmp_path)
    await stack.daemon.prepare()
    yield stack
    await stack.daemon.stop()


async def test_one_replica_refusing_the_token_is_enough_and_the_summary_says_which_share(
    tmp_path: Path,
) -> None:
    stack = Stack(tmp_path, 'replicas = ["http://r1.test", "http://r2.test"]')
    await stack.daemon.prepare()
    try:
        stack.refusing.add("r2.test")
        await stack.check()
        summary = stack.fired(TOKEN_REJECTED)
        assert "rejected (HTTP 403) by 1/2 replicas" in summary
    finally:
        await stack.daemon.stop()


def a_jwt(expires_at: float) -> str:
    """A token as ``questcity token`` mints one, signed with a key the monitor never sees."""
    return jwt.encode(
        {"sub": "questcity-cli", "role": "operator", "exp": int(expires_at)},
        "a-key-only-the-backend-holds-0123456789",
        algorithm="HS256",
    )


def use_token(stack: Stack, token: str) -> None:
    """The monitor presents ``token``, and the backend takes it."""
    stack.environ[VARIABLE] = token
    stack.backend.token = token


async def test_a_rejected_token_fires_says_what_to_do_is_logged_once_and_clears(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.environ[VARIABLE] = "a-revoked-token"  # the backend takes only its own
    with caplog.at_level(logging.INFO, logger="monitor"):
        await stack.check(3)
    summary = stack.fired(TOKEN_REJECTED)
    assert "rejected (HTTP 401)" in summary
    assert f"questcity token --role operator --ttl 7776000 and set {VARIABLE}" in summary
    assert "a-revoked-token" not in summary
    [alert] = await stack.stored(TOKEN_REJECTED)
    assert (alert.state, alert.component, alert.summary) == (
        AlertState.FIRING,
        "@monitor/questcity-api",
        summary,
    )
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert lines == [
        "token for questcity-api rejected (HTTP 401): mint a new one with questcity token "
        f"--role operator --ttl 7776000 and set {VARIABLE}"
    ]

    stack.backend.token = "a-revoked-token"  # a new token minted and set: taken
    await stack.clears(TOKEN_REJECTED)


async def test_an_unset_token_variable_fires_and_naming_it_clears(stack: Stack) -> None:
    stack.environ[VARIABLE] = "   "  # blank is unset
    await stack.check()
    summary = stack.fired(TOKEN_MISSING)
    assert f"{VARIABLE} is not set" in summary
    assert "questcity token --role operator" in summary
    [alert] = await stack.stored(TOKEN_MISSING)
    assert alert.state is AlertState.FIRING
    assert not stack.sent(TOKEN_REJECTED)  # nothing was sent, so nothing was refused

    stack.environ[VARIABLE] = "operator-token"
    await stack.clears(TOKEN_MISSING)


async def test_a_token_expiring_within_the_warning_fires_and_a_fresh_one_clears_it(
    stack: Stack,
) -> None:
    expires = T0 + 2 * DAY
    use_token(stack, a_jwt(expires))
    await stack.check()
    summary = stack.fired(TOKEN_EXPIRING)
    when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert f"expires in 2 days ({when})" in summary
    assert "questcity token --role operator" in summary
    [alert] = await stack.stored(TOKEN_EXPIRING)
    assert alert.state is AlertState.FIRING
    assert not stack.sent(TOKEN_REJECTED)

    use_token(stack, a_jwt(T0 + 365 * DAY))
    await stack.clears(TOKEN_EXPIRING)


async def test_an_expired_token_is_rejected_in_so_many_words_and_a_plain_token_never_expires(
    stack: Stack,
) -> None:
    use_token(stack, a_jwt(T0 - 60))  # (the fake backend does not look at exp: the monitor does)
    await stack.check()
    [(state, _, summary)] = stack.sent(TOKEN_REJECTED)
    assert state == "firing"
    assert "expired at" in summary
    assert not stack.sent(TOKEN_EXPIRING)

    use_token(stack, "operator-token")  # not a JWT: nothing to warn about
    await stack.check(HOLD_DOWN // int(INTERVAL) + 2)
    assert [s for s, _, _ in stack.sent(TOKEN_REJECTED)] == ["firing", "resolved"]
    assert not stack.sent(TOKEN_EXPIRING)


def missed_event(code: int, job: str) -> JobExecutionEvent:
    return JobExecutionEvent(code, job, "default", datetime.fromtimestamp(T0, UTC))


async def missed(stack: Stack, code: int, job: str) -> None:
    """APScheduler's listener call, and the alert it writes in the background, done."""
    stack.daemon._on_missed(missed_event(code, job))
    while stack.daemon._reporting:
        await asyncio.wait(set(stack.daemon._reporting))
    await settle()


async def test_a_missed_run_fires_for_its_target_and_a_run_on_time_clears_it(
    stack: Stack,
) -> None:
    await stack.check()
    await missed(stack, EVENT_JOB_MISSED, "retention")  # late by design: no alert
    await missed(stack, EVENT_JOB_MISSED, "check:questcity-api")
    assert stack.sent(CHECKS_MISSED) == [], "one miss (a suspend, one slow round) pages nobody"
    await missed(stack, EVENT_JOB_MAX_INSTANCES, "check:questcity-api")  # open_after (2) in a row
    summary = stack.fired(CHECKS_MISSED)
    assert "2 checks skipped" in summary
    [alert] = await stack.stored(CHECKS_MISSED)
    assert alert.state is AlertState.FIRING

    await missed(stack, EVENT_JOB_MISSED, "check:questcity-api")
    [alert] = await stack.stored(CHECKS_MISSED)
    assert "3 checks skipped" in alert.summary  # the figures follow, no second page
    assert [s for s, _, _ in stack.sent(CHECKS_MISSED)] == ["firing"]

    await stack.clears(CHECKS_MISSED)


async def test_an_unwritable_store_pages_once_unstored_and_is_recorded_once_it_writes_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = RefusedChecks(stack.daemon.writer, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="monitor.self_alerts"):
        await stack.check(4)
    assert stack.daemon.checks == 4  # the daemon kept checking
    [(state, component, summary)] = stack.sent(STORE_UNWRITABLE)
    assert (state, component) == ("firing", MONITOR)
    assert "cannot write its store (the store file is read-only)" in summary
    assert [r.getMessage() for r in caplog.records if r.name == "monitor.self_alerts"] == [summary]
    assert await stack.stored(STORE_UNWRITABLE) == []  # nowhere to record it yet

    store.failing = False
    await stack.check(HOLD_DOWN // int(INTERVAL) + 2)
    assert [s for s, _, _ in stack.sent(STORE_UNWRITABLE)] == ["firing", "resolved"]
    [alert] = await stack.stored(STORE_UNWRITABLE)
    assert (alert.state, alert.component, alert.started_at) == (
        AlertState.RESOLVED,
        MONITOR,
        T0,
    )
    assert alert.notified is AlertState.RESOLVED  # both notices went out: none owed on resume
    assert "takes writes again" in alert.summary


def database_down(stack: Stack) -> None:
    document = detailed(status="unhealthy", database="unhealthy")
    checks = document["checks"]
    assert isinstance(checks, dict)
    checks["database"]["critical"] = True
    stack.backend.document = document


async def silence(stack: Stack, key: str) -> None:
    await alert_actions.silence(
        stack.daemon.reader, stack.daemon.writer, key, 7200.0, by="alice", reason=None, at=T0
    )
    await stack.clock.advance(INTERVAL)  # the engine reads silences again after 5 s


async def test_silencing_the_token_warning_does_not_silence_the_database_page(
    stack: Stack,
) -> None:
    """The monitor's alerts about a target are on @monitor/TARGET, not on the target's key."""
    await silence(stack, "@monitor/questcity-api")  # "we know, the token is being rotated"
    use_token(stack, a_jwt(T0 + 2 * DAY))
    database_down(stack)
    await stack.check(3)
    assert [(s, c) for s, c, _ in stack.sent("service_down")] == [
        ("firing", "questcity-api/database")
    ]
    assert stack.sent(TOKEN_EXPIRING) == [], "silenced"
    [alert] = await stack.stored(TOKEN_EXPIRING)
    assert (alert.state, alert.component) == (AlertState.FIRING, "@monitor/questcity-api")


async def test_silencing_a_target_does_not_hide_that_the_monitor_is_blind_on_it(
    stack: Stack,
) -> None:
    await silence(stack, "questcity-api")  # maintenance of the backend
    use_token(stack, a_jwt(T0 + 2 * DAY))
    database_down(stack)
    await stack.check(3)
    assert stack.sent("service_down") == []
    assert len(await stack.stored("service_down")) == 1, "recorded, held by the silence"
    assert [s for s, _, _ in stack.sent(TOKEN_EXPIRING)] == ["firing"]


async def test_checks_missed_now_and_then_page_nobody(stack: Stack) -> None:
    for _ in range(3):  # a miss, then a run on time: never open_after in a row
        await missed(stack, EVENT_JOB_MISSED, "check:questcity-api")
        await stack.check()
    assert stack.sent(CHECKS_MISSED) == []
    assert await stack.stored(CHECKS_MISSED) == []


async def test_one_store_refusal_pages_nobody(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One "database is locked" (a slow round) is not an unwritable store."""
    writer = stack.daemon.writer
    record_check = writer.record_check
    refusals = 0

    async def once_in_a_while(*args: object, **kwargs: object) -> object:
        nonlocal refusals
        if stack.daemon.checks % 3 == 0:
            refusals += 1
            raise StoreUnavailable("database is locked")
        return await record_check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "record_check", once_in_a_while)
    await stack.check(12)
    assert refusals == 4
    assert stack.sent(STORE_UNWRITABLE) == []
    assert await stack.stored(STORE_UNWRITABLE) == []


async def test_an_unwritable_store_pages_after_hold_down_seconds_of_refusals(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target checked rarely: its second refusal may be minutes away; the store refusing every
    write for hold_down seconds pages anyway (here: the other target's refusals)."""

    async def refusing(*args: object, **kwargs: object) -> object:
        raise StoreUnavailable("the disk is full")

    monkeypatch.setattr(stack.daemon.writer, "record_check", refusing)
    self_alerts = stack.daemon.self_alerts
    for at in range(0, HOLD_DOWN, 10):  # one refusal per target, each a new target
        self_alerts.store_failed(StoreUnavailable("the disk is full"), T0 + at, f"t{at}")
    await settle()
    assert stack.sent(STORE_UNWRITABLE) == []
    self_alerts.store_failed(StoreUnavailable("the disk is full"), T0 + HOLD_DOWN, "t-last")
    await stack.daemon.dispatcher.drain()
    assert [s for s, _, _ in stack.sent(STORE_UNWRITABLE)] == ["firing"]


async def test_a_resumed_self_alert_nobody_judges_any_more_is_resolved_at_the_first_round(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Its target was removed from the config while the monitor was down: nothing would ever
    report it clear."""
    writer, reader = stack.daemon.writer, stack.daemon.reader
    orphan = await writer.fire_alert(TOKEN_EXPIRING, MONITOR, "old-api", "expires soon", T0 - 99)
    kept = await writer.fire_alert(CHECKS_MISSED, MONITOR, "questcity-api", "skipped", T0 - 99)
    for alert_id in (orphan, kept):
        await writer.mark_notified(alert_id, AlertState.FIRING)
    await stack.daemon.alerts.resume(reader, at=T0)  # as a restarted daemon's prepare does
    with caplog.at_level(logging.INFO, logger="monitor"):
        await stack.check()
    assert [(s, c) for s, c, _ in stack.sent(TOKEN_EXPIRING)] == [("resolved", "@monitor/old-api")]
    assert (await reader.alert(orphan)).state is AlertState.RESOLVED  # type: ignore[union-attr]
    assert (await reader.alert(kept)).state is AlertState.FIRING, "judged: its own hold-down"  # type: ignore[union-attr]
    assert any(getattr(r, "event", "") == "self_alert_orphan" for r in caplog.records)


async def test_a_run_skipped_behind_a_slow_targets_round_is_not_the_monitors_failure(
    stack: Stack,
) -> None:
    """A hung API takes the whole timeout, and with the group commit a round can outlast a short
    interval: APScheduler skips the next run (max_instances). That is the target being slow —
    its own alerts say so — not the monitor: the drill's slow API paged "checks missed" first.
    A round still running past its timeout and a whole interval more is stuck: that one counts."""
    await stack.check()
    target = stack.daemon.config.target("questcity-api")
    stack.daemon._started["questcity-api"] = stack.clock.monotonic()  # a round in progress
    for _ in range(3):
        await missed(stack, EVENT_JOB_MAX_INSTANCES, "check:questcity-api")
    assert stack.sent(CHECKS_MISSED) == [], "a slow target's round is not a missed check"

    await stack.clock.advance(target.timeout + target.interval + 0.1)  # the same round, stuck
    for _ in range(2):
        await missed(stack, EVENT_JOB_MAX_INSTANCES, "check:questcity-api")
    assert "2 checks skipped" in stack.fired(CHECKS_MISSED)
