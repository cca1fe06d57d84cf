"""The on-call TUI: one Textual app over the monitor's history store.

It reads the store on a timer (only re-rendering when something new was written) and never starts
a scheduler of its own: the daemon (``questcity monitor``) checks the targets, and textual-serve
may run one copy of this app per browser tab. Its own writes are the on-call actions: a breaker
reset (through the health API of every replica of the target, then into the incident timeline),
a check on demand, notes on incidents, and acks and silences of alerts. Each is made as the
engineer at the TUI (:class:`monitor.tui.identity.Identity`: a browser tab's signed-in user, or
this terminal's local account) and only if their role allows it. Every dependency is injected,
so tests drive it with a temporary store, a mock HTTP transport and a frozen clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import ClassVar

import httpx
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.worker import WorkerState

from monitor.config import MonitorConfig, Target
from monitor.discovery import Discovery, DiscoveryError, Replica
from monitor.reset import ReplicaOutcome, reset_everywhere, reset_summary
from monitor.store import (
    HistoryRead,
    HistoryWrite,
    Incident,
    IncidentState,
    StoreError,
    StoreNotInitialised,
)
from monitor.tui.checking import check_now
from monitor.tui.checks import CheckRunning
from monitor.tui.data import (
    ComponentRow,
    Overview,
    OverviewLoader,
    ResetMark,
    breaker_rank,
)
from monitor.tui.formatting import clock_time
from monitor.tui.identity import GATED, Action, Identity, default_identity, refusal
from monitor.tui.messages import LeadershipChanged, StoreChanged
from monitor.tui.resetting import outcome_line, reset_question, unavailable_reason
from monitor.tui.screens import (
    AlertsScreen,
    ConfirmModal,
    DetailScreen,
    HelpScreen,
    IncidentsScreen,
    MainScreen,
    NoteDraft,
    NoteModal,
    ResetOutcomesModal,
)
from monitor.tui.screens.maintenance import MaintenanceScreen
from shared.resilience import SYSTEM_CLOCK, Clock

REFRESH_GROUP = "refresh"
FULL_RELOAD_EVERY = 30.0
"""Seconds between reloads even when the store did not change: durations ("for 12m") move on,
and a dead daemon shows up as stale figures."""


class MonitorApp(App[None]):
    TITLE = "QuestCity on-call"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reset", "Reset breaker", id="reset"),
        Binding("c", "check", "Check now", id="check"),
        Binding("n", "note", "Note", id="note"),
        # A viewer's r/c/n: the hints above are hidden and the key says why nothing happens.
        Binding("r", "refuse('reset')", show=False, id="reset.refused"),
        Binding("c", "refuse('check')", show=False, id="check.refused"),
        Binding("n", "refuse('note')", show=False, id="note.refused"),
        Binding("a", "alerts", "Alerts", id="alerts"),
        Binding("i", "incidents", "Incidents", id="incidents"),
        Binding("m", "maintenance", "Maintenance", id="maintenance"),
        Binding("question_mark,f1", "help", "Help", id="help", key_display="?"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    last_result: reactive[str] = reactive("")
    """The outcome of the latest action, kept on the main screen after its notification fades."""

    def __init__(
        self,
        config: MonitorConfig,
        *,
        reader: HistoryRead,
        writer: HistoryWrite,
        http: httpx.AsyncClient | None = None,
        clock: Clock = SYSTEM_CLOCK,
        environ: Mapping[str, str] | None = None,
        actor: str | None = None,
        identity: Identity | None = None,
        tz: tzinfo | None = None,
        refresh_interval: float = 2.0,
        discovery: Discovery | None = None,
        check_runner: CheckRunning | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.reader = reader
        self.writer = writer
        self.clock = clock
        self.environ = environ
        self.identity = identity or default_identity(environ, actor)
        self.tz = tz or _local_zone()
        self.refresh_interval = refresh_interval
        self.loader = OverviewLoader(reader, config, monotonic=clock.monotonic)
        self.discovery = discovery or Discovery(config.dns_nameservers)
        self.overview: Overview | None = None
        self.store_error: str | None = None
        self.resets: dict[tuple[str, str], ResetMark] = {}
        self._http = http
        self._owns_http = http is None
        self._check_runner = check_runner
        self._owns_check_runner = check_runner is None
        self._seen_change: float | None = None
        self._loaded_at = clock.monotonic()

    # -- lifecycle ----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    @property
    def check_runner(self) -> CheckRunning:
        """What runs a ``[[checks]]`` entry on ``c``: made on first use (its clients are the
        kinds' own, not the health API's)."""
        if self._check_runner is None:
            from monitor.checks.run import CheckRunner  # only an operator's c on a check needs it

            self._check_runner = CheckRunner(
                self.clock, environ=self.environ, nameservers=self.config.dns_nameservers
            )
        return self._check_runner

    def on_mount(self) -> None:
        self.set_interval(self.refresh_interval, self._tick, name="refresh")
        self.refresh_now()

    async def on_unmount(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
        if self._owns_check_runner and self._check_runner is not None:
            await self._check_runner.aclose()

    def on_ready(self) -> None:
        self.sub_title = f"{self.identity.name} ({self.identity.role.value})"

    def can_reset(self, target: Target) -> bool:
        return target.admin_token(self.environ) is not None

    @property
    def actor(self) -> str:
        """Who the TUI writes as: the reset's audit header, notes, acks, silences."""
        return self.identity.name

    # -- what the engineer at the TUI may do ---------------------------------------------------

    def permitted(self, action: Action) -> bool:
        """Whether the engineer's role allows ``action``; if not, says so (and nothing is
        written or sent)."""
        if self.identity.may(action):
            return True
        self.action_refuse(action.value)
        return False

    def action_refuse(self, action: str) -> None:
        self.tell(refusal(self.identity, action), "warning", timeout=12)

    # -- reading the store --------------------------------------------------------------------

    def _tick(self) -> None:
        busy = any(
            worker.group == REFRESH_GROUP
            and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.workers
        )
        if not busy:
            self.load(force=self.clock.monotonic() - self._loaded_at >= FULL_RELOAD_EVERY)

    def refresh_now(self) -> None:
        self.load(force=True)

    @work(exclusive=True, group=REFRESH_GROUP)
    async def load(self, force: bool) -> None:
        try:
            change = await self.reader.last_change()
            if not force and change == self._seen_change:
                await self._reload_leadership()
                return
            overview = await self.loader.load(self.clock.wall())
        except StoreError as error:
            self.store_error = describe_store_error(error)
            for screen in self.screen_stack:
                if isinstance(screen, MainScreen):
                    screen.show_store_error(self.store_error)
            return
        self.store_error = None
        self._seen_change = change
        self._loaded_at = self.clock.monotonic()
        self.overview = overview.with_resets(self.resets)
        for screen in self.screen_stack:
            screen.post_message(StoreChanged(self.overview))

    async def _reload_leadership(self) -> None:
        if self.overview is None:
            return
        now = self.clock.wall()
        has_checks = any(row.checked_at is not None for row in self.overview.rows)
        lead = await self.loader.load_leadership(has_checks=has_checks)
        if lead == self.overview.leadership:
            return
        self.overview = replace(self.overview, leadership=lead)
        for screen in self.screen_stack:
            screen.post_message(LeadershipChanged(lead, now))

    # -- telling the operator ------------------------------------------------------------------

    def tell(
        self, message: str, severity: SeverityLevel = "information", timeout: float = 8
    ) -> None:
        self.last_result = f"{clock_time(self.clock.wall(), self.tz, self.clock.wall())}  {message}"
        self.notify(message, severity=severity, timeout=timeout, markup=False)

    # -- which component the keys act on -------------------------------------------------------

    def selected_row(self) -> ComponentRow | None:
        screen = self.screen
        if isinstance(screen, MainScreen | DetailScreen):
            return screen.selected_row()
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        gated = GATED.get(action)
        if gated is not None and not self.identity.may(gated):
            return False  # a viewer's hint is hidden; the key runs "refuse" instead
        if action == "refuse":
            return bool(parameters) and not self.identity.may(Action(str(parameters[0])))
        if action in ("reset", "check"):
            return isinstance(screen, MainScreen | DetailScreen)
        if action == "note":
            return isinstance(screen, MainScreen | DetailScreen | IncidentsScreen)
        if action == "alerts":
            return not isinstance(screen, AlertsScreen)
        if action == "incidents":
            return not isinstance(screen, IncidentsScreen)
        if action == "maintenance":
            # Not from a dialog: m there is a letter typed, or a key for the dialog's list.
            return not isinstance(screen, MaintenanceScreen | ModalScreen)
        return True

    # -- screens ------------------------------------------------------------------------------

    def open_detail(self, row: ComponentRow) -> None:
        self.push_screen(DetailScreen(row))

    def action_alerts(self) -> None:
        if not isinstance(self.screen, AlertsScreen):
            self.push_screen(AlertsScreen())

    def action_incidents(self) -> None:
        if not isinstance(self.screen, IncidentsScreen):
            self.push_screen(IncidentsScreen())

    def action_maintenance(self) -> None:
        if not isinstance(self.screen, MaintenanceScreen):
            self.push_screen(MaintenanceScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.identity.may(Action.RESET):
            yield SystemCommand(
                "Reset breaker", "Reset the selected service's breaker", self.action_reset
            )
        if self.identity.may(Action.CHECK):
            yield SystemCommand(
                "Check now", "Check the selected target or check now", self.action_check
            )
        if self.identity.may(Action.NOTE):
            yield SystemCommand(
                "Add note", "Note on the open incident of the selection", self.action_note
            )
        yield SystemCommand("Alerts", "Every alert, firing first", self.action_alerts)
        yield SystemCommand("Incidents", "Incidents and their timelines", self.action_incidents)
        yield SystemCommand(
            "Maintenance", "Maintenance windows: schedule, list, cancel", self.action_maintenance
        )
        yield SystemCommand("Help", "Keys and what the marks mean", self.action_help)

    # -- r: reset a breaker on every replica --------------------------------------------------

    def action_reset(self) -> None:
        if not self.permitted(Action.RESET):
            return
        row = self.selected_row()
        if row is None:
            self.tell("Select a service first (main screen, ↑ ↓).", "warning")
            return
        if row.is_check:
            self.tell(
                f"{row.title} is a {row.kind} check: a check has no circuit breakers, nothing to "
                "reset (r resets a service's breaker; c checks it now).",
                "warning",
            )
            return
        if row.is_target:
            self.tell("Breakers belong to services: select a service row and press r.", "warning")
            return
        target = self.config.target(row.target)
        token = target.admin_token(self.environ)
        if token is None:
            self.tell(unavailable_reason(target), "warning", timeout=20)
            return
        self.ask_reset(target, row, token)

    @work(exclusive=True, group="reset")
    async def ask_reset(self, target: Target, row: ComponentRow, token: str) -> None:
        """Resolve the target's replicas now (the question says how many the reset touches),
        then ask."""
        try:
            replicas = await self.discovery.replicas(target)
        except DiscoveryError as error:
            self.tell(
                f"Nothing was reset: the replicas of {target.title} could not be resolved "
                f"({error.message}). Try again when DNS answers.",
                "error",
                timeout=20,
            )
            return
        if not replicas:
            self.tell(f"Nothing was reset: {target.title} has no replica now.", "warning")
            return
        state = row.shown_breaker or "unknown"
        spread = row.spread
        if spread is not None and spread.state != "closed":
            state = f"{spread.state} on {spread.count}/{spread.total} replicas"
        question = reset_question(row.service, row.title, target, replicas, state)

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.run_reset(target, row.service, row.title, token, replicas)

        self.push_screen(ConfirmModal("Reset circuit breaker?", question), answered)

    @work(exclusive=True, group="reset")
    async def run_reset(
        self, target: Target, service: str, title: str, token: str, replicas: Sequence[Replica]
    ) -> None:
        outcomes = await reset_everywhere(
            self.http, target, service, token, replicas, clock=self.clock, actor=self.actor
        )
        done = [outcome for outcome in outcomes if outcome.ok and outcome.state is not None]
        where = f"{title} on {target.title}"
        headline = f"Breaker of {where}: {reset_summary(outcomes)}."
        if len(outcomes) == 1:
            headline = f"Breaker of {where}: {outcomes[0].message}."
        if len(outcomes) > 1:
            self.push_screen(
                ResetOutcomesModal(
                    f"Reset {service} on {target.title}",
                    headline,
                    [(outcome_line(outcome), outcome.ok) for outcome in outcomes],
                )
            )
        if not done:
            self.tell(f"Nothing was reset. {headline}", "error", timeout=20)
            return
        at = self.clock.wall()
        state = done[0].state or "closed"
        self.resets[(target.name, service)] = ResetMark(
            state, at, frozenset(outcome.replica for outcome in done)
        )
        message = headline
        try:
            incident_id = await self.writer.record_reset(
                target.name, service, self.actor, _previous_state(done), at
            )
        except StoreError as error:
            message += f" It could not be written to the history ({type(error).__name__})."
        else:
            if incident_id is not None:
                message += f" Logged on incident #{incident_id}."
            else:
                message += f" {title} has no open incident to log it on."
        partial = len(done) < len(outcomes)
        self.tell(message, "warning" if partial else "information", timeout=20 if partial else 8)
        self.refresh_now()

    # -- c: check now --------------------------------------------------------------------------

    def action_check(self) -> None:
        if not self.permitted(Action.CHECK):
            return
        row = self.selected_row()
        if row is None:
            self.tell("Select a target first (main screen, ↑ ↓).", "warning")
            return
        check_now(self, row)

    # -- n: note on the open incident ----------------------------------------------------------

    def action_note(self) -> None:
        if not self.permitted(Action.NOTE):
            return
        incident = self._incident_for_note()
        if incident is not None:

            def written(draft: NoteDraft | None) -> None:
                if draft is not None:
                    self.run_note(incident, draft)

            self.push_screen(NoteModal(incident), written)

    def _incident_for_note(self) -> Incident | None:
        screen = self.screen
        if isinstance(screen, IncidentsScreen):
            incident = screen.selected_incident()
            if incident is None or incident.state is not IncidentState.OPEN:
                self.tell("Notes go on open incidents: select an open one.", "warning")
                return None
            return incident
        row = self.selected_row()
        if row is None:
            self.tell("Select a service first (main screen, ↑ ↓).", "warning")
            return None
        incident = self.overview.open_incident(row.target, row.service) if self.overview else None
        if incident is None:
            self.tell(
                f"No open incident for {row.title}: notes go on an open incident "
                "(press i for all incidents).",
                "warning",
            )
        return incident

    @work(exclusive=True, group="note")
    async def run_note(self, incident: Incident, draft: NoteDraft) -> None:
        try:
            await self.writer.add_note(
                incident.id, draft.text, public=draft.public, actor=self.actor, at=self.clock.wall()
            )
        except StoreError as error:
            self.tell(
                f"The note could not be written to the history ({type(error).__name__}).", "error"
            )
            return
        shown = "public: also on the status page" if draft.public else "internal"
        self.tell(f"Note added to incident #{incident.id} ({shown}).")
        self.refresh_now()


def _previous_state(done: Sequence[ReplicaOutcome]) -> str:
    """The worst state the reset found (what the incident timeline says it "was")."""
    states = [outcome.previous_state or "unknown" for outcome in done]
    return max(states, key=breaker_rank)


def describe_store_error(error: StoreError) -> str:
    if isinstance(error, StoreNotInitialised):
        return "The history has no tables yet: run questcity monitor with this config first."
    detail = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
    return f"Cannot read the history ({detail}). Retrying."


def _local_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone
