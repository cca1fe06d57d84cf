"""Paging through Apprise, against real receivers: a local HTTP server behind a ``json://`` URL
and a local SMTP server (aiosmtpd, with a login) behind ``mailto://``. Firing, resolved and
reminder notices as people read them; reminders every ``repeat_every`` on the check clock until
the alert is acknowledged in the store; a receiver's 5xx retried; a URL Apprise cannot use
refused at start-up by its variable and position; no URL, token or password in any log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from monitor.alert_actions import ack
from monitor.apprise_sink import MAX_THROTTLE, AppriseConfigError, AppriseSink
from monitor.config import AlertRules, Notifier
from monitor.notices import Guarded
from monitor.notifiers import MAX_REMINDED_ALERTS, AlertNotice, AlertSink, Dispatcher, build_sinks
from monitor.store import (
    HistoryReader,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from shared.resilience import SYSTEM_CLOCK
from shared.resilience.testing import FakeClock, waits_disabled
from tests.monitor.test_alert_lifecycle import API, Recording, check, database
from tests.monitor.test_alerts import engine_of
from tests.support.ports import free_port

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
ENV = "QUESTCITY_APPRISE_URLS"
TOKEN = "hk7Qz2SECRETpathTOKEN9x"
PASSWORD = "Sm7pPASSWORDq4"


# -- the receivers ----------------------------------------------------------------------------


@dataclass
class HttpReceiver:
    port: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    """Statuses to answer, in order, before answering 200."""
    requests: int = 0

    def url(self, token: str = TOKEN) -> str:
        return f"json://127.0.0.1:{self.port}/hooks/{token}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            assert request.match_info["token"] == TOKEN
            self.bodies.append(await request.json())
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    found = HttpReceiver()
    app = web.Application()
    app.router.add_post("/hooks/{token}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    found.port = free_port()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == PASSWORD.encode())


@dataclass
class Smtp:
    port: int
    mailbox: Mailbox

    def url(self) -> str:
        return (
            f"mailto://oncall:{PASSWORD}@127.0.0.1:{self.port}?mode=insecure"
            "&from=monitor@questcity.test&to=oncall@questcity.test"
        )


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,  # a local test server: no TLS to offer
    )
    controller.start()
    try:
        yield Smtp(port, mailbox)
    finally:
        controller.stop()


def notice(state: str = "firing", **changes: object) -> AlertNotice:
    values: dict[str, object] = {
        "rule": "s3_failure_rate",
        "target": "questcity-api",
        "service": "s3",
        "state": state,
        "summary": "100 % of S3 operations failing on 1 of 1 replicas",
        "at": T0,
        "alert_id": 42,
        "component": "questcity-api/s3",
        "name": "QuestCity API / Photos and avatars",
    }
    values.update(changes)
    return AlertNotice(**values)  # type: ignore[arg-type]


def apprise_sinks(urls: list[str], *, repeat_every: float | None = None) -> list[AlertSink]:
    # A long timeout: on a loaded machine a send can take seconds, and one that times out is
    # sent again (at least once), which would make the counts below flaky.
    notifier = Notifier("apprise", timeout=30.0, urls_env=ENV, repeat_every=repeat_every)
    client = httpx.AsyncClient()  # (unused by Apprise sinks)
    return list(build_sinks((notifier,), client, FakeClock(), environ={ENV: " ".join(urls)}))


async def send(dispatcher: Dispatcher, *notices: AlertNotice) -> None:
    for item in notices:
        dispatcher.dispatch(item)
    await asyncio.wait_for(dispatcher.drain(grace=30.0), timeout=40.0)


# -- firing and resolved ----------------------------------------------------------------------


async def test_firing_and_resolved_reach_a_json_endpoint_and_a_mailbox(
    receiver: HttpReceiver, smtp: Smtp
) -> None:
    sinks = apprise_sinks([receiver.url(), smtp.url()])
    dispatcher = Dispatcher(sinks)

    await send(dispatcher, notice("firing"))
    await send(dispatcher, notice("resolved", at=T0 + 95, summary="S3 operations succeed again"))

    assert [body["type"] for body in receiver.bodies] == ["failure", "success"]
    firing, resolved = receiver.bodies
    assert firing["title"] == "#42 QuestCity API / Photos and avatars: s3_failure_rate"
    assert firing["message"] == (
        "FIRING: 100 % of S3 operations failing on 1 of 1 replicas\n"
        "\n"
        "Component: QuestCity API / Photos and avatars (questcity-api/s3)\n"
        "Rule: s3_failure_rate\n"
        "Firing since 2027-01-15 08:00:00 UTC\n"
        "Acknowledge (stops reminders): questcity alert ack 42 --by NAME\n"
        "Ref: 42:firing"
    )
    assert resolved["title"] == firing["title"], "one alert, one title (incident tools match by it)"
    assert str(resolved["message"]).startswith("RESOLVED: S3 operations succeed again\n")
    assert "Resolved at 2027-01-15 08:01:35 UTC" in str(resolved["message"])
    assert "Ref: 42:resolved" in str(resolved["message"])

    subjects = [message["Subject"] for message in smtp.mailbox.messages]
    assert subjects == [firing["title"], resolved["title"]]
    assert smtp.mailbox.messages[0]["To"] == "oncall@questcity.test"
    text = smtp.mailbox.messages[0].get_payload(decode=True)  # (text/plain, one part)
    assert isinstance(text, bytes)
    assert b"Firing since 2027-01-15 08:00:00 UTC" in text
    assert smtp.mailbox.logins == [(b"oncall", PASSWORD.encode())] * 2


async def test_a_receiver_answering_5xx_is_retried_and_then_given_up_on(
    receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = Dispatcher(apprise_sinks([receiver.url()]))
    receiver.answers = [503]
    with waits_disabled():
        await send(dispatcher, notice())
    assert receiver.requests == 2, "the 503 was retried"
    assert [body["title"] for body in receiver.bodies] == [
        "#42 QuestCity API / Photos and avatars: s3_failure_rate"
    ]

    receiver.answers = [500, 500, 500]
    with waits_disabled(), caplog.at_level(logging.WARNING):
        await send(dispatcher, notice("resolved"))
    assert receiver.requests == 5, "three attempts, then given up"
    assert len(receiver.bodies) == 1
    failed = [r.getMessage() for r in caplog.records if r.name == "monitor.alerts"]
    assert f"alert 42:resolved not delivered to ${ENV} #1 (JSON): AppriseDeliveryError" in failed


async def test_one_dead_url_neither_holds_back_nor_repeats_the_others(
    receiver: HttpReceiver,
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/hooks/{TOKEN}"
    dispatcher = Dispatcher(apprise_sinks([dead, receiver.url()]))
    with waits_disabled():
        await send(dispatcher, notice())
    assert receiver.requests == 1, "the live receiver got it once, the dead one was retried alone"


# -- reminders --------------------------------------------------------------------------------


async def test_reminders_every_repeat_every_until_acknowledged(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    """Through the alert engine, on the check clock (a check every 10 s): the database down
    pages, reminds at +60 s and +120 s, is acknowledged at +135 s (as ``questcity alert ack``
    does), reminds no more, and resolves after the hold-down."""
    engine = open_engine(f"sqlite:///{tmp_path}/monitor.db")
    await create_schema(engine)
    writer, reader = HistoryWriter(engine), HistoryReader(engine)
    dispatcher = Dispatcher(apprise_sinks([receiver.url()], repeat_every=60.0))
    alerts = engine_of(AlertRules(), writer, dispatcher, reader, targets=(API,))

    async def checks(start: int, stop: int, *, up: bool) -> None:
        for at in range(start, stop, 10):
            await alerts.observe(check(at, database(up)))
            await asyncio.wait_for(dispatcher.drain(grace=30.0), timeout=40.0)

    try:
        await checks(0, 140, up=False)
        (alert,) = await reader.alerts(active_only=True)
        await ack(reader, writer, alert.id, by="alice", at=T0 + 135)
        await checks(140, 400, up=False)
        await checks(400, 460, up=True)
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:  # (the outbox's marks, written in the background)
            await asyncio.wait(others, timeout=10.0)
    finally:
        await engine.dispose()

    titles = {str(body["title"]) for body in receiver.bodies}
    assert titles == {f"#{alert.id} QuestCity API / Database: service_down"}
    words = [str(body["message"]).split(":", 1)[0] for body in receiver.bodies]
    assert words == ["FIRING", "REMINDER 1", "REMINDER 2", "RESOLVED"], (
        "reminders at 70 and 130 s; none after the ack at 135 s"
    )
    assert [body["type"] for body in receiver.bodies] == ["failure", "info", "info", "success"]
    assert f"Ref: {alert.id}:firing:reminder:2" in str(receiver.bodies[2]["message"])
    assert "not acknowledged" in str(receiver.bodies[1]["message"])


async def test_reminders_per_notifier_seeded_at_resume_and_forgotten_on_resolve() -> None:
    hourly, quarterly, never = Recording(3600.0), Recording(900.0), Recording(None)
    dispatcher = Dispatcher([hourly, quarterly, never])
    firing = notice()

    # A monitor that resumed 2 h 5 min into the alert: seeded now, nothing sent yet, and its
    # reminders numbered on from those its predecessor sent (keys never reused).
    dispatcher.remind(firing, T0 + 7500)
    await dispatcher.drain()
    assert hourly.notices == quarterly.notices == []
    dispatcher.remind(firing, T0 + 7500 + 900)
    await dispatcher.drain()
    assert [n.key for n in quarterly.notices] == ["42:firing:reminder:9"]
    assert hourly.notices == never.notices == []
    dispatcher.remind(firing, T0 + 7500 + 3600)
    await dispatcher.drain()
    assert [n.key for n in hourly.notices] == ["42:firing:reminder:3"]
    assert [n.key for n in quarterly.notices] == ["42:firing:reminder:9", "42:firing:reminder:10"]
    assert never.notices == []

    dispatcher.dispatch(notice("resolved", at=T0 + 11_200))
    await dispatcher.drain()
    assert dispatcher.reminded == 0, "forgotten on resolve"
    dispatcher.remind(firing, T0 + 20_000)  # (a late call seeds again, sends nothing)
    await dispatcher.drain()
    reminders = [n for n in quarterly.notices + hourly.notices if n.reminder]
    assert len(reminders) == 3


async def test_the_reminder_table_is_bounded() -> None:
    dispatcher = Dispatcher([Recording(60.0)])
    for alert_id in range(MAX_REMINDED_ALERTS + 5):
        dispatcher.remind(notice(alert_id=alert_id), T0)
    assert dispatcher.reminded == MAX_REMINDED_ALERTS
    dispatcher.forget(MAX_REMINDED_ALERTS + 4)
    assert dispatcher.reminded == MAX_REMINDED_ALERTS - 1


# -- URLs: from the environment, never in a log -----------------------------------------------


async def test_no_url_token_or_password_in_any_log_line(
    receiver: HttpReceiver, smtp: Smtp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"json://127.0.0.1:{free_port()}/hooks/{TOKEN}"
    dispatcher = Dispatcher(apprise_sinks([receiver.url(), smtp.url(), dead]))
    with waits_disabled():
        await send(dispatcher, notice())
    # Even with Apprise's own logger turned up to DEBUG (someone's logging config), its lines
    # about URLs and failed sends are scrubbed.
    logging.getLogger("apprise").setLevel(logging.DEBUG)
    try:
        receiver.answers = [500, 500, 500]
        with waits_disabled():
            await send(dispatcher, notice("resolved"))
    finally:
        logging.getLogger("apprise").setLevel(logging.WARNING)
    assert len(receiver.bodies) == 1
    assert [m["Subject"][:10] for m in smtp.mailbox.messages] == ["#42 QuestC"] * 2
    # (aiosmtpd's own lines, "mail.log", are the test's receiver talking, not the monitor.)
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.")]
    assert any(r.name == "apprise" for r in caplog.records), "Apprise did log (scrubbed)"
    assert any("not delivered to $QUESTCITY_APPRISE_URLS #3 (JSON)" in line for line in lines)
    for line in lines:
        assert TOKEN not in line and PASSWORD not in line and "json://" not in line, line
        assert "mailto://" not in line, line


@pytest.mark.parametrize(
    "bad",
    [f"nosuchservice://{TOKEN}@example.org", f"slack://{TOKEN}", f"http//{TOKEN}", "mailto://"],
)
def test_a_url_apprise_cannot_use_is_refused_by_variable_and_position(
    bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("apprise").setLevel(logging.DEBUG)
    try:
        with pytest.raises(AppriseConfigError) as refused:
            AppriseSink([f"json://127.0.0.1:9/hooks/{TOKEN}", bad], urls_env=ENV)
    finally:
        logging.getLogger("apprise").setLevel(logging.WARNING)
    assert str(refused.value).startswith(f"${ENV} (notifiers): URL 2 of 2 is not one Apprise")
    assert TOKEN not in str(refused.value)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()


async def test_an_unset_variable_is_said_at_start_and_with_every_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier("apprise", urls_env=ENV)
    with caplog.at_level(logging.WARNING):
        async with httpx.AsyncClient() as client:
            (sink,) = build_sinks((notifier,), client, environ={ENV: "  "})
        dispatcher = Dispatcher([sink])
        await send(dispatcher, notice())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        f"notifiers[0] (apprise): ${ENV} is not set or empty, so nobody is paged through it "
        f"(alerts go to the log only); export {ENV} with its Apprise URLs, space-separated"
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"alert 42:firing not paged: ${ENV} is not set (notifiers[0])" in warnings


def test_each_url_is_named_by_its_variable_position_and_service(receiver: HttpReceiver) -> None:
    (sink,) = apprise_sinks([receiver.url(), receiver.url()])
    assert isinstance(sink, AppriseSink)
    assert sink.services == [f"${ENV} #1 (JSON)", f"${ENV} #2 (JSON)"]
    assert json.dumps(sink.services).count(TOKEN) == 0


def test_questcity_monitor_refuses_an_unusable_url_before_it_starts(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{tmp_path}/monitor.db"

[[targets]]
name = "questcity-api"
url = "http://127.0.0.1:9"

[[notifiers]]
type = "log"

[[notifiers]]
type = "apprise"
urls_env = "{ENV}"
""",
        encoding="utf-8",
    )
    environ = {**os.environ, ENV: f"json://127.0.0.1:9/hooks/{TOKEN} slack://{TOKEN}"}
    done = subprocess.run(
        [sys.executable, "-m", "questcity", "monitor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"questcity: ${ENV} (notifiers[1]): URL 2 of 2 is not one Apprise can use"
    )
    assert TOKEN not in done.stderr + done.stdout
    assert not (tmp_path / "monitor.db").exists(), "refused before the store was touched"


# -- incident tools: a resolve finds its trigger ------------------------------------------------


@dataclass
class IncidentTool:
    """PagerDuty's Events API v2 and Opsgenie's Alert API as Apprise's plugins call them (their
    endpoints are constants in the plugins, pointed here): what each incident was opened,
    reminded and closed with."""

    port: int = 0
    pagerduty: list[dict[str, object]] = field(default_factory=list)
    opsgenie: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    opened: int = 0

    async def enqueue(self, request: web.Request) -> web.Response:
        self.pagerduty.append(await request.json())
        return web.json_response({"status": "success"}, status=202)

    async def alerts(self, request: web.Request) -> web.Response:
        self.opened += 1
        self.opsgenie.append((f"new r{self.opened}", await request.json()))
        return web.json_response({"requestId": f"r{self.opened}"}, status=202)

    async def act(self, request: web.Request) -> web.Response:
        action = f"{request.match_info['action']} {request.match_info['id']}"
        self.opsgenie.append((action, await request.json()))
        return web.json_response({"requestId": "x"}, status=202)


@pytest.fixture
async def incident_tool(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IncidentTool]:
    from apprise.plugins import opsgenie, pagerduty

    tool = IncidentTool(free_port())
    app = web.Application()
    app.router.add_post("/v2/enqueue", tool.enqueue)
    app.router.add_post("/v2/alerts", tool.alerts)
    app.router.add_post("/v2/alerts/{id}/{action}", tool.act)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", tool.port).start()
    base = f"http://127.0.0.1:{tool.port}"
    monkeypatch.setitem(pagerduty.PAGERDUTY_API_LOOKUP, "us", f"{base}/v2/enqueue")
    monkeypatch.setitem(opsgenie.OPSGENIE_API_LOOKUP, "us", f"{base}/v2/alerts")
    # (Apprise waits 5.5 s of real time between two requests of one URL: not in a test.)
    monkeypatch.setattr(pagerduty.NotifyPagerDuty, "request_rate_per_sec", 0.0)
    monkeypatch.setattr(opsgenie.NotifyOpsgenie, "request_rate_per_sec", 0.0)
    yield tool
    await runner.cleanup()


async def test_pagerduty_and_opsgenie_resolve_the_incident_their_trigger_opened(
    incident_tool: IncidentTool,
) -> None:
    """With ``action=map`` PagerDuty's dedup key is a hash of the title and Opsgenie closes the
    alerts it opened under the title: the firing, its reminder and its resolved notice of one
    alert carry one title; another alert of the same rule and component another."""
    dispatcher = Dispatcher(
        apprise_sinks(
            [
                f"pagerduty://{TOKEN}@{PASSWORD}?action=map",
                f"opsgenie://{TOKEN}?action=map",
            ]
        )
    )
    for each in (
        notice("firing"),
        notice("firing", reminder=1),
        notice("resolved", at=T0 + 95),
        notice("firing", alert_id=43),
    ):
        await send(dispatcher, each)

    events = [(e["event_action"], e["dedup_key"]) for e in incident_tool.pagerduty]
    assert [action for action, _ in events] == ["trigger", "trigger", "resolve", "trigger"]
    keys = [key for _, key in events]
    assert keys[0] == keys[1] == keys[2], "the reminder and the resolve find the trigger"
    assert keys[3] != keys[0], "a later alert is its own incident"

    actions = [action for action, _ in incident_tool.opsgenie]
    assert actions == ["new r1", "notes r1", "close r1", "new r2"], (
        "the reminder a note on the open alert, the resolve closes it (not a new one each)"
    )


def test_a_short_password_or_query_secret_is_scrubbed_too(
    receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Parts shorter than 6 characters are ordinary words, but not a password or a token."""
    url = f"json://oncall:q7Zx@127.0.0.1:{receiver.port}/hooks/{TOKEN}?token=k9w&lang=en"
    apprise_sinks([url])
    with caplog.at_level(logging.WARNING, logger="apprise"):
        logging.getLogger("apprise").warning("login q7Zx refused; token k9w; lang en")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "apprise"]
    assert line == "login *** refused; token ***; lang en"


async def test_two_notices_to_one_throttled_url_each_arrive_once(receiver: HttpReceiver) -> None:
    """Apprise waits out its per-service throttle (5.5 s for most services) in a worker thread
    before a request. Two notices at once to one URL used to race: the second's attempt, bounded
    by our timeout while it waited out the throttle, was abandoned but not stopped — its thread
    delivered it later, and the retry delivered it again. Sends to a URL now go one at a time,
    bounded by the timeout plus the throttle. (A short throttle and timeout keep this quick.)"""
    sink = AppriseSink(
        [receiver.url()], urls_env=ENV, timeout=0.4, clock=SYSTEM_CLOCK
    )  # the real clock: the throttle is Apprise's real wait
    [service] = sink._services
    service.apprise[0].request_rate_per_sec = 0.8
    sink._services = [replace(service, throttle=0.8, guarded=Guarded("test", timeout=1.2))]
    dispatcher = Dispatcher([sink])

    with waits_disabled():
        await send(dispatcher, notice(alert_id=42), notice(alert_id=43))

    assert sorted(str(body["title"])[:3] for body in receiver.bodies) == ["#42", "#43"]
    assert receiver.requests == 2


def test_a_service_waits_at_most_a_second_between_two_requests(
    receiver: HttpReceiver, smtp: Smtp
) -> None:
    """Apprise's 5.5 s between two requests to one service would page the second cause of an
    outage 5.5 s after the first (the drill's e-mail did, 10.9 s after the fault): capped."""
    sink = AppriseSink([receiver.url(), smtp.url()], urls_env=ENV)
    # (what Apprise waits, and what our bound allows for it)
    waits = [(s.apprise[0].request_rate_per_sec, s.throttle) for s in sink._services]
    assert waits == [(0, 0.0), (MAX_THROTTLE, MAX_THROTTLE)]  # json:// never waited; mailto:// did
