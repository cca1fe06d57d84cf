"""The on-call drill of issue #14, on a real stack, judged by what the engineer is *told*.

One stack for every phase (``tests.support.signals_stack``): the backend, PostgreSQL and S3
(SeaweedFS) behind fault proxies, a fault proxy in front of the API too, the monitor with ``up``'s
``monitor.toml`` at a 1 s interval, a 3 s hold-down and an Apprise notifier whose two URLs are a
local HTTP receiver (``json://``) and a local SMTP server with a login (``mailto://``), and the
status page. Phases, each followed by recovery (the fault healed and, as the README's drill says,
the faulted breakers reset by the on-call engineer):

- the database down (connections refused): one cause, the critical database;
- S3 down: one cause, S3 (the API degraded *because* of it is the same incident);
- both: two causes, two incidents, the API in both;
- slow: the API answering slower than the monitor's probe timeout (a target cause);
- blackhole: the database accepting connections and never answering (timeouts, not refusals).

For each phase: exactly one firing and one resolved notice per cause at each receiver, nothing
else, each carrying the component's key and display name; the page (for a critical service or
the target itself) within ``open_after × interval`` (plus the backend's own detection when the
fault is a timeout) plus :data:`SLACK`; the resolved notice within ``hold_down + 2 intervals +
SLACK`` of recovery (an e-mail, queued behind other mails, gets SLACK once more); one open
incident per cause listing its components, the cause first. During the S3 outage and after the
drill, the uptime of the same component agrees between the TUI's loader, the status page's HTML
and its ``components.json`` and ``summary.json``. No Apprise secret in any log or on the page.

Every wait is on real I/O (the receivers, the store, the page) with a bound; timings are read
from when each notice arrived, not from when the poll saw it.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor.config import MonitorConfig, load_config
from monitor.figures import percent_text
from monitor.store import AlertState, HistoryReader, IncidentState, open_engine
from monitor.tui.data import OverviewLoader
from tests.support import PostgresServer, S3Server
from tests.support.polling import eventually
from tests.support.receivers import HOOK_TOKEN, SMTP_PASSWORD, Arrival, JsonReceiver, SmtpReceiver
from tests.support.signals_stack import TARGET, Settings, SignalsStack, signals_stack

INTERVAL = 1.0
HOLD_DOWN = 3.0
SLACK = 5.0
"""The issue's allowance over ``open_after × interval`` for a page (delivery, a check's own
time, the backend's health interval); the test's over the hold-down too, on a busy machine."""
UNHEALTHY_AFTER = 3
"""Failed checks in a row before the backend calls a service unhealthy (``HealthChecker``'s
``unhealthy_after``, as the backend registers its dependencies)."""
NONCRITICAL_PAGE_WITHIN = 40.0
"""S3 is not critical: it pages through its failure-rate rules, whose time depends on the window's
history (a rate over 5 min), so the drill bounds it only loosely and prints the figure."""

API = "QuestCity API"
DATABASE = "Quests and accounts"
PHOTOS = "Photos and avatars"


@dataclass(frozen=True)
class Cause:
    service: str
    """The failing service, or "" for the target itself."""
    rule: str | None
    """The rule that must page (None: any one rule, once)."""
    paged_within: Callable[[MonitorConfig, SignalsStack], float]

    @property
    def key(self) -> str:
        return f"{TARGET}/{self.service}" if self.service else TARGET

    @property
    def name(self) -> str:
        return {"": API, "database": f"{API} / {DATABASE}", "s3": f"{API} / {PHOTOS}"}[self.service]


def fast_page(config: MonitorConfig, stack: SignalsStack) -> float:
    """A refused connection fails at once: the monitor's ``open_after`` checks and the slack."""
    return config.incidents.open_after * INTERVAL + SLACK


def page_after_timeouts(config: MonitorConfig, stack: SignalsStack) -> float:
    """A blackholed database fails a check only at its timeout, ``UNHEALTHY_AFTER`` times before
    the backend calls it unhealthy; then as :func:`fast_page`."""
    timeout = min(5.0, float(stack.env["QUESTCITY_DB_TIMEOUT"]))  # the check's own (backend)
    return UNHEALTHY_AFTER * max(timeout, INTERVAL) + fast_page(config, stack)


def loose_page(config: MonitorConfig, stack: SignalsStack) -> float:
    return NONCRITICAL_PAGE_WITHIN


DB_DOWN = Cause("database", "service_down", fast_page)
S3_DOWN = Cause("s3", None, loose_page)
API_SLOW = Cause("", "target_unreachable", fast_page)
DB_BLACKHOLE = Cause("database", "service_down", page_after_timeouts)


@dataclass(frozen=True)
class Phase:
    name: str
    fault: Callable[[SignalsStack], None]
    causes: tuple[Cause, ...]
    reset: tuple[str, ...]
    """The services whose breakers the engineer resets once the fault is healed."""


PHASES = (
    Phase("database down", lambda s: s.db.refuse(), (DB_DOWN,), ("database",)),
    Phase("S3 down", lambda s: s.s3.refuse(), (S3_DOWN,), ("s3",)),
    Phase(
        "database and S3 down",
        lambda s: _both_down(s),
        (DB_DOWN, S3_DOWN),
        ("database", "s3"),
    ),
    Phase("database blackhole", lambda s: s.db.blackhole(), (DB_BLACKHOLE,), ("database",)),
    # Each chunk of the answer late by an interval: the probe (timeout 0.75 intervals) gives up.
    Phase("API slow", lambda s: s.apis[0].slow(INTERVAL), (API_SLOW,), ()),
)


def _both_down(stack: SignalsStack) -> None:
    stack.db.refuse()
    stack.s3.refuse()


@dataclass
class Drill:
    stack: SignalsStack
    config: MonitorConfig
    hook: JsonReceiver
    mail: SmtpReceiver
    http: httpx.AsyncClient
    reader: HistoryReader
    loader: OverviewLoader
    timings: list[str]

    def receivers(self) -> dict[str, list[Arrival]]:
        return {"json": self.hook.arrivals, "mail": self.mail.arrivals}

    async def run(self, phase: Phase) -> None:
        before = {name: len(arrivals) for name, arrivals in self.receivers().items()}
        faulted_at = time.time()
        phase.fault(self.stack)
        for cause in phase.causes:
            bound = cause.paged_within(self.config, self.stack)
            await self._wait(f"{phase.name}: {cause.key} paged", "FIRING", cause, before, bound)
        await self._check_incidents(phase)
        if phase.causes == (S3_DOWN,):
            # During an outage: the figures the issue saw disagree (82.78 % against 100 %).
            await self.numbers_agree(PHOTOS, "s3", outage=True)

        self.stack.heal_all()
        for service in phase.reset:
            await self._reset(service)
        recovered_at = time.time()
        resolved_within = self.config.alerts.hold_down + 2 * INTERVAL + SLACK
        for cause in phase.causes:
            await self._wait(
                f"{phase.name}: {cause.key} resolved", "RESOLVED", cause, before, resolved_within
            )
        await eventually(
            self._all_clear, f"{phase.name}: no alert firing, no incident open", within=30.0
        )

        # Exactly one firing and one resolved notice per cause, nothing else, at each receiver.
        expected = Counter(
            (kind, cause.key) for cause in phase.causes for kind in ("FIRING", "RESOLVED")
        )
        for receiver, arrivals in self.receivers().items():
            new = arrivals[before[receiver] :]
            assert Counter(_kind_and_key(a) for a in new) == expected, (
                phase.name,
                receiver,
                [a.title for a in new],
            )
            for cause in phase.causes:
                firing = _one(new, "FIRING", cause)
                resolved = _one(new, "RESOLVED", cause)
                paged, cleared = firing.at - faulted_at, resolved.at - recovered_at
                self.timings.append(
                    f"{phase.name} [{receiver}] {cause.key}: paged {paged:.1f} s "
                    f"(bound {cause.paged_within(self.config, self.stack):.1f}), resolved "
                    f"{cleared:.1f} s after recovery (bound {resolved_within:.1f})"
                )
                print(self.timings[-1], flush=True)
                if cause.rule is not None:
                    assert firing.rule == cause.rule, firing.title
                # The bounds are the page's (the JSON receiver's). An e-mail goes out over SMTP
                # after the mails queued before it (a few seconds behind on a busy machine), so
                # it gets the slack once more: it must come, not race the webhook.
                lag = 0.0 if receiver == "json" else SLACK
                assert paged <= cause.paged_within(self.config, self.stack) + lag, self.timings[-1]
                assert cleared <= resolved_within + lag, self.timings[-1]
                assert firing.title == resolved.title, (firing, resolved)  # one per alert
                for notice in (firing, resolved):
                    assert notice.headline.startswith(f"{cause.name}: "), notice
                    assert f"Component: {cause.name} ({cause.key})" in notice.body, notice
        self.stack.check_alive()

    async def _wait(
        self, what: str, kind: str, cause: Cause, before: dict[str, int], bound: float
    ) -> None:
        try:
            await eventually(
                self._arrived(kind, cause, before), what, within=bound + SLACK, every=0.1
            )
        except AssertionError as error:
            arrived = {
                name: [(a.title, _kind_and_key(a)) for a in arrivals[before[name] :]]
                for name, arrivals in self.receivers().items()
            }
            raise AssertionError(f"{error}; arrived: {arrived}") from None

    def _arrived(
        self, kind: str, cause: Cause, before: dict[str, int]
    ) -> Callable[[], Awaitable[bool]]:
        async def arrived() -> bool:
            return all(
                any(_kind_and_key(a) == (kind, cause.key) for a in arrivals[before[name] :])
                for name, arrivals in self.receivers().items()
            )

        return arrived

    async def _check_incidents(self, phase: Phase) -> None:
        """One open incident per cause, listing the cause first and the API when it suffers."""
        opened = await self.reader.incidents(state=IncidentState.OPEN)

        async def one_per_cause() -> bool:
            nonlocal opened
            opened = await self.reader.incidents(state=IncidentState.OPEN)
            return sorted(i.service for i in opened) == sorted(c.service for c in phase.causes)

        await eventually(one_per_cause, f"{phase.name}: one incident per cause", within=10.0)
        public = (await self.http.get(f"{self.stack.status}/api/v2/summary.json")).json()
        by_name = {i["name"]: i for i in public["incidents"]}
        assert len(by_name) == len(phase.causes), (phase.name, list(by_name))
        for incident in opened:
            listed = [(c.target, c.service) for c in incident.components]
            assert listed[0] == (TARGET, incident.service), (phase.name, listed)
            if incident.service:  # a service's outage: the API suffers with it
                assert (TARGET, "") in listed, (phase.name, listed)
                assert len(listed) == 2, (phase.name, listed)
            else:
                assert listed == [(TARGET, "")], (phase.name, listed)
            document = by_name[incident.title]
            names = [c["name"] for c in document["components"]]
            if incident.service == "database":  # the critical dependency: a major outage
                assert incident.title == f"Major outage: {DATABASE}", incident.title
                assert document["impact"] == "critical", document
                assert names[0] == DATABASE and API in names, names
            elif incident.service == "s3":
                assert names[0] == PHOTOS and API in names, names
            else:
                assert incident.title == f"Major outage: {API}", incident.title
                assert document["impact"] == "critical", document

    async def _reset(self, service: str) -> None:
        admin = {"Authorization": f"Bearer {self.stack.env['QUESTCITY_ADMIN_TOKEN']}"}
        for port in self.stack.backend_ports:  # each replica directly, not through its proxy
            answer = await self.http.post(
                f"http://127.0.0.1:{port}/api/v1/health/services/{service}/reset", headers=admin
            )
            assert answer.status_code == 200, answer.text

    async def _all_clear(self) -> bool:
        firing = [
            a for a in await self.reader.alerts(active_only=True) if a.state is AlertState.FIRING
        ]
        return not firing and not await self.reader.incidents(state=IncidentState.OPEN)

    async def numbers_agree(self, name: str, service: str, *, outage: bool = False) -> None:
        """The TUI (24 h, 7 d, 30 d), the page's HTML and both JSON documents show one figure."""
        seen: list[str] = []

        async def agree() -> bool:
            overview = await self.loader.load(time.time())
            row = overview.row(f"{TARGET}::{service}")
            assert row is not None
            html = (await self.http.get(f"{self.stack.status}/")).text
            components = (await self.http.get(f"{self.stack.status}/api/v2/components.json")).json()
            summary = (await self.http.get(f"{self.stack.status}/api/v2/summary.json")).json()
            figures = [percent_text(u) for u in row.uptime]
            figures.append(_html_uptime(html, name))
            for document in (components, summary):
                (found,) = [c for c in document["components"] if c["name"] == name]
                figures.append(found["uptime"]["text"])
                figures.append(percent_text(found["uptime"]["percent"]))
            seen[:] = figures
            return len(set(figures)) == 1 and (not outage or figures[0] != "100%")

        await eventually(
            agree, f"one uptime for {name} everywhere (last seen {seen})", within=10.0, every=0.2
        )
        self.timings.append(f"uptime of {name}: {seen[0]} in the TUI, the page and its JSON")


def _kind_and_key(arrival: Arrival) -> tuple[str, str]:
    return arrival.state, arrival.component or f"(no component in {arrival.title!r})"


def _one(arrivals: list[Arrival], kind: str, cause: Cause) -> Arrival:
    (found,) = [a for a in arrivals if _kind_and_key(a) == (kind, cause.key)]
    return found


def _html_uptime(html: str, name: str) -> str:
    for item in html.split('<li class="component">')[1:]:
        if f'<h3 class="name">{name}</h3>' in item:
            # "N uptime", or "N uptime since DAY" for a history younger than the bar
            found = re.search(r'<span class="uptime">([^<]*?) uptime(?: since [^<]*)?</span>', item)
            assert found is not None, item
            return found.group(1)
    raise AssertionError(f"{name} not on the page")


async def test_the_signals_drill(
    tmp_path: Path, postgres_server: PostgresServer, s3_server: S3Server
) -> None:
    settings = Settings(interval=INTERVAL, alerts={"hold_down": HOLD_DOWN})
    timings: list[str] = []
    started = time.monotonic()
    async with (
        JsonReceiver() as hook,
        SmtpReceiver() as mail,
        signals_stack(
            tmp_path,
            postgres_server,
            s3_server,
            settings=settings,
            apprise_urls=[hook.url(), mail.url()],
        ) as stack,
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        config = load_config(stack.config_path)
        assert config.alerts.hold_down == HOLD_DOWN
        engine = open_engine(stack.store_url)
        try:
            reader = HistoryReader(engine)
            drill = Drill(
                stack, config, hook, mail, http, reader, OverviewLoader(reader, config), timings
            )

            async def operational() -> bool:
                status = (await http.get(f"{stack.status}/api/v2/status.json")).json()
                return bool(status["status"]["indicator"] == "none")

            await eventually(operational, "the page says all systems operational", within=30.0)
            assert (hook.arrivals, mail.arrivals) == ([], []), "a healthy start paged"

            for phase in PHASES:
                await drill.run(phase)
            told = (len(hook.arrivals), len(mail.arrivals))

            for name, service in ((API, ""), (DATABASE, "database"), (PHOTOS, "s3")):
                await drill.numbers_agree(name, service)
            assert (len(hook.arrivals), len(mail.arrivals)) == told, "told something after it all"
            page = (await http.get(f"{stack.status}/")).text
        finally:
            await engine.dispose()
        logs = [stack.log(name) for name in stack.children]
    print("\n".join([*timings, f"drill took {time.monotonic() - started:.0f} s"]))
    assert hook.refused == 0 and mail.failed_logins == 0
    for text in (*logs, page):  # the Apprise URLs' secrets are nowhere
        assert HOOK_TOKEN not in text and SMTP_PASSWORD not in text


pytestmark = pytest.mark.timeout(420)
