"""The detail screen of one component: response times, state timeline, incidents, breaker
counters and pool figures; for a ``[[checks]]`` entry, what it checks, its conditions and its
latest result instead of breaker and pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Sparkline, Static

from monitor.figures import LAST_7D, LAST_24H, LAST_30D, percent_text
from monitor.store import StoreError
from monitor.tui import checks
from monitor.tui.data import ComponentRow, Detail, load_detail
from monitor.tui.formatting import (
    bounded,
    clock_time,
    duration,
    last_error,
    millis,
    plain,
    since,
    timestamp,
)
from monitor.tui.messages import StoreChanged
from monitor.tui.timeline import figures_text, incidents_text
from monitor.tui.uptimes import UPTIME_WINDOWS
from monitor.tui.widgets.status import StatusWord, breaker_text, maintenance_text
from monitor.tui.widgets.uptime import UptimeStrip

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp

COMPONENT_SIDE = (
    ("Circuit breaker", "breaker"),
    ("Connection pool", "pool"),
    ("Service", "service-figures"),
)
CHECK_SIDE = (
    ("Check", "check-what"),
    ("Conditions", "check-conditions"),
    ("Latest result", "check-result"),
)
"""A check has no breaker or pool: what it is and what its last run found."""


class DetailScreen(Screen[None]):
    CSS_PATH = "detail.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
    ]

    def __init__(self, row: ComponentRow) -> None:
        super().__init__()
        self.row = row
        self.detail: Detail | None = None

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def selected_row(self) -> ComponentRow | None:
        return self.row

    def compose(self) -> ComposeResult:
        with Horizontal(id="detail-head"):
            yield Label(plain(self._heading()), id="detail-title")
            yield StatusWord(self.row.status, id="detail-status")
            yield Static("", id="detail-since")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-main"):
                yield Static("", id="recent-label", classes="section")
                yield Sparkline([], id="recent-chart")
                yield Static("", id="hourly-label", classes="section")
                yield Sparkline([], id="hourly-chart")
                yield Static("State timeline", classes="section")
                yield UptimeStrip(id="strip-hours")
                yield UptimeStrip(id="strip-days")
                yield Static("Incidents", classes="section")
                yield Static("", id="incidents")
            with Vertical(id="detail-side"):
                for title, id in CHECK_SIDE if self.row.is_check else COMPONENT_SIDE:
                    yield Static(title, classes="section")
                    yield Static("", id=id)
        yield Footer()

    def _heading(self) -> str:
        if self.row.is_check:
            return checks.heading(self.row)
        if self.row.is_target:
            return f"{self.row.title} (target {self.row.target})"
        target = self.monitor.config.target(self.row.target)
        return f"{target.title} › {self.row.title}"

    def on_mount(self) -> None:
        self.reload()

    def on_store_changed(self, message: StoreChanged) -> None:
        row = message.overview.row(self.row.key)
        if row is not None:
            self.row = row
            self.reload()

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        try:
            detail = await load_detail(self.monitor.reader, self.row, self.monitor.clock.wall())
        except StoreError as error:
            self.monitor.tell(f"Could not read the history: {type(error).__name__}", "error")
            return
        self.show(detail)

    def show(self, detail: Detail) -> None:
        self.detail = detail
        row, tz, now = detail.row, self.monitor.tz, self.monitor.clock.wall()
        self.query_one(StatusWord).show(row.status)
        head = Text()
        window = row.maintenance
        if window is not None:  # what the status page shows; the word beside it is measured
            head.append_text(maintenance_text())
            head.append(f" “{bounded(window.title, 80)}” until ")
            head.append(f"{clock_time(window.ends_at, tz, now)} · ")
        head.append(f"since {since(row.since, tz, now, compact=False)}")
        if row.checked_at is not None:
            head.append(f" · last check {duration(now - row.checked_at)} ago", style="dim")
        self.query_one("#detail-since", Static).update(head)
        measured = [v for v in detail.recent if v is not None]
        recent_label = Text(f"Response time, last {len(detail.recent)} checks", style="bold")
        if measured:
            recent_label.append(
                f"   min {millis(min(measured))} · max {millis(max(measured))} · "
                f"last {millis(measured[-1])}",
                style="",
            )
        self.query_one("#recent-label", Static).update(recent_label)
        self.query_one("#recent-chart", Sparkline).data = measured or [0.0]
        averages = [p.avg_ms for p in detail.hourly]
        hourly_label = Text("Hourly average, last 24 h", style="bold")
        if detail.hourly:
            hourly_label.append(
                f"   peak hour avg {millis(max(averages))} · "
                f"worst single check {millis(max(p.max_ms for p in detail.hourly))}"
            )
        self.query_one("#hourly-label", Static).update(hourly_label)
        self.query_one("#hourly-chart", Sparkline).data = averages or [0.0]
        day, week, month = row.uptime
        self.query_one("#strip-hours", UptimeStrip).show(
            LAST_24H.label, detail.hours, percent_text(day)
        )
        self.query_one("#strip-days", UptimeStrip).show(
            LAST_30D.label,
            detail.days,
            f"{percent_text(month)} ({LAST_7D.label} {percent_text(week)})",
        )
        self.query_one("#incidents", Static).update(incidents_text(detail.incidents[:8], tz, now))
        if row.is_check:
            self._show_check(row)
        else:
            self._show_side(detail)

    def _show_check(self, row: ComponentRow) -> None:
        """What the check is (from this TUI's config) and what its latest run found."""
        check = next((c for c in self.monitor.config.checks if c.name == row.target), None)
        self.query_one("#check-what", Static).update(checks.what_text(check, row))
        self.query_one("#check-conditions", Static).update(checks.conditions_text(check))
        self.query_one("#check-result", Static).update(
            checks.result_text(row, self.monitor.tz, self.monitor.clock.wall())
        )

    def _show_side(self, detail: Detail) -> None:
        row, now = detail.row, self.monitor.clock.wall()
        breaker = Text("state  ", style="dim")
        breaker.append_text(breaker_text(row.shown_breaker, reset=row.reset_to is not None))
        if detail.breaker:
            counters = {k: v for k, v in detail.breaker.items() if k not in ("name", "state")}
            if "last_transition_at" in counters and isinstance(
                counters["last_transition_at"], int | float
            ):
                counters["last_transition_at"] = timestamp(
                    float(counters["last_transition_at"]), self.monitor.tz
                )
            breaker.append("\n")
            breaker.append_text(figures_text(counters, empty=""))
        elif row.is_target:
            breaker = Text("Breakers belong to services.", style="dim")
        self.query_one("#breaker", Static).update(breaker)
        self.query_one("#pool", Static).update(
            figures_text(detail.pool, empty="No pool figures for this component.")
        )
        figures: dict[str, object] = {
            "response": millis(row.response_ms),
            "consecutive_failures": row.failures,
        }
        # The monitor's uptime, one figure per window, each named with its window and printed
        # as the page prints it. The backend's own ``availability_percent`` (its last hundred
        # checks of the dependency, a different window and source) is not shown beside it:
        # "availability percent 53" next to "uptime 24h 78.906" read as a contradiction.
        for window, value in zip(UPTIME_WINDOWS, row.uptime, strict=True):
            figures[f"uptime {window.label}"] = percent_text(value)
        for key in ("average_response_time_ms", "critical"):
            if key in row.details:
                figures[key] = row.details[key]
        error_at = row.details.get("last_error_at")
        error = row.details.get("last_error") or row.error
        if error:
            figures["last_error"] = last_error(
                str(error), error_at if isinstance(error_at, int | float) else None, now
            )
        text = figures_text(figures, empty="")
        self.query_one("#service-figures", Static).update(text)
