"""Maintenance windows (issue #15): the active, upcoming and recent ones, the highlighted one's
components, message and what the monitor held back during it; ``s`` schedules one, ``x``
cancels the highlighted one (asks first). While a window is active its components read "under
maintenance" on the page and their alerts and automatic incidents are held.

The dialog reads moments as ISO 8601 with an offset, ``now``, or ``+2h``-style shortcuts (the
end's shortcut counts from the start) and previews the window in UTC before it is scheduled.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import PurePath
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, SelectionList, Static

from monitor import public_actions
from monitor.public_actions import PublicActionError, window_state
from monitor.store import Maintenance, StoreError
from monitor.tui.formatting import bounded, duration, plain, timestamp
from monitor.tui.identity import Action
from monitor.tui.messages import StoreChanged
from monitor.tui.screens.confirm import ConfirmModal
from monitor.tui.screens.public import (
    MOMENT_HINT,
    NAME_SHOWN,
    WritingDialog,
    catalogue_choices,
    field,
    keys_cell,
    long_text,
    parse_when,
    sentence,
    store_problem,
    utc,
    window_preview,
)

if TYPE_CHECKING:
    from monitor.tui.app import MonitorApp

RECENT = 7 * 86400.0
"""How long an ended or cancelled window stays in the list."""
TITLE_SHOWN = 80
_STATE_STYLE = {
    "active": ("● ACTIVE", "bold yellow"),
    "upcoming": ("◷ upcoming", "cyan"),
    "completed": ("✔ completed", "green"),
    "cancelled": ("✖ cancelled", "dim"),
}
_ORDER = {"active": 0, "upcoming": 1, "completed": 2, "cancelled": 2}


class ScheduleModal(WritingDialog[int]):
    """Answers the new window's id."""

    FIRST_FIELD = "window-title"
    SUBMIT_BUTTON = "schedule"
    PROBLEM = "window-problem"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="schedule.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog public-dialog"):
            yield Label("Schedule maintenance", classes="dialog-title")
            yield Static(
                "Shown on the status page as upcoming; while it lasts its components read under "
                "maintenance and their alerts are held. Subscribers are told. Components: space "
                "picks one, tab moves on.",
                classes="dialog-body",
                markup=False,
            )
            yield field(
                "Title", Input(placeholder="What players read", id="window-title", compact=True)
            )
            yield field("Components", SelectionList[str](id="window-components", compact=True))
            yield field("Starts", Input(placeholder=MOMENT_HINT, id="window-starts", compact=True))
            yield field(
                "Ends",
                Input(
                    placeholder="ISO 8601 with its offset, or +2h (after the start)",
                    id="window-ends",
                    compact=True,
                ),
            )
            yield field(
                "Message",
                Input(
                    placeholder="Optional: what players should know",
                    id="window-message",
                    compact=True,
                ),
            )
            yield Static("", id="window-preview", classes="dialog-preview")
            yield Static("", id="window-problem", classes="dialog-problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Schedule", id="schedule", variant="warning")

    def on_mount(self) -> None:
        self._preview()
        self.load_catalogue()

    @work(group="catalogue")
    async def load_catalogue(self) -> None:
        try:
            catalogue = await self.monitor.reader.components()
        except StoreError as error:
            self.say(f"The components could not be read ({type(error).__name__}). Try again.")
            return
        self.query_one(SelectionList).add_options(catalogue_choices(catalogue))

    def window(self) -> tuple[float, float]:
        """(starts_at, ends_at) as typed; :class:`PublicActionError` when either is not a
        moment."""
        now = self.monitor.clock.wall()
        starts = self.query_one("#window-starts", Input).value
        ends = self.query_one("#window-ends", Input).value
        if not starts.strip():
            raise PublicActionError(f"say when it starts: {MOMENT_HINT}")
        starts_at = parse_when(starts, now=now)
        if not ends.strip():
            raise PublicActionError("say when it ends: ISO 8601 with its offset, or +2h")
        return starts_at, parse_when(ends, now=now, base=starts_at)

    @on(Input.Changed, "#window-starts, #window-ends")
    def _preview(self) -> None:
        preview = self.query_one("#window-preview", Static)
        try:
            starts_at, ends_at = self.window()
        except PublicActionError as error:
            preview.update(Text(sentence(str(error)), style="dim"))
            return
        preview.update(Text(window_preview(starts_at, ends_at, self.monitor.clock.wall())))

    async def write(self) -> int:
        monitor = self.monitor
        starts_at, ends_at = self.window()
        return await public_actions.schedule_maintenance(
            monitor.reader,
            monitor.writer,
            title=self.query_one("#window-title", Input).value,
            components=list(self.query_one(SelectionList).selected),
            starts_at=starts_at,
            ends_at=ends_at,
            message=self.query_one("#window-message", Input).value,
            by=monitor.actor,
            at=monitor.clock.wall(),
        )


class MaintenanceScreen(Screen[None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = ["lists.tcss", "public.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "schedule", "Schedule", id="maintenance.schedule"),
        Binding("x", "cancel_window", "Cancel window", id="maintenance.cancel"),
        # A viewer's s/x: hints hidden, the key says why nothing happens.
        Binding("s", "app.refuse('maintenance')", show=False, id="maintenance.schedule.refused"),
        Binding("x", "app.refuse('maintenance')", show=False, id="maintenance.cancel.refused"),
        Binding("escape", "app.pop_screen", "Back", id="maintenance.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.windows: dict[str, Maintenance] = {}
        self._focus_id: int | None = None

    @property
    def monitor(self) -> MonitorApp:
        return cast("MonitorApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("Maintenance", id="list-title")
        table: DataTable[Text | str] = DataTable(id="maintenance-table", cursor_type="row")
        table.add_columns("#", "State", "Starts", "Ends", "Lasts", "Components", "Title", "By")
        yield table
        with VerticalScroll(id="window-panel"):
            yield Static("", id="window-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.reload()

    def on_store_changed(self, message: StoreChanged) -> None:
        self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("schedule", "cancel_window"):
            return self.monitor.identity.may(Action.MAINTENANCE)
        return True

    def selected_window(self) -> Maintenance | None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        if not self.windows or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.windows.get(key or "")

    @work(exclusive=True, group="maintenance")
    async def reload(self) -> None:
        now = self.monitor.clock.wall()
        try:
            windows = await self.monitor.reader.maintenances(
                since=now - RECENT, include_cancelled=True, limit=200
            )
        except StoreError as error:
            self.monitor.tell(
                f"Could not read the maintenance windows: {type(error).__name__}", "error"
            )
            return
        self.show(windows)

    def show(self, windows: list[Maintenance]) -> None:
        now, tz = self.monitor.clock.wall(), self.monitor.tz
        ordered = sorted(windows, key=lambda w: _rank(w, now))
        previous = self.selected_window()
        self.windows = {str(w.id): w for w in ordered}
        states = [window_state(w, now) for w in ordered]
        title = Text("Maintenance  ", style="bold")
        title.append(f"{states.count('active')} active", style="bold yellow")
        title.append(f" · {states.count('upcoming')} upcoming", style="cyan")
        title.append(f" · {len(states) - states.count('active') - states.count('upcoming')}")
        title.append(" ended or cancelled in 7 days", style="dim")
        if self.monitor.identity.may(Action.MAINTENANCE):
            title.append("   s: schedule · x: cancel", style="dim")
        self.query_one("#list-title", Static).update(title)
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        for window, state in zip(ordered, states, strict=True):
            word, style = _STATE_STYLE[state]
            table.add_row(
                str(window.id),
                Text(word, style=style),
                _when(window.starts_at, tz),
                _when(window.ends_at, tz),
                duration(window.ends_at - window.starts_at),
                plain(keys_cell(window.components)),
                plain(bounded(window.title, TITLE_SHOWN)),
                plain(bounded(window.created_by, NAME_SHOWN)),
                key=str(window.id),
            )
        wanted = self._focus_id if self._focus_id is not None else (previous and previous.id)
        self._focus_id = None
        if wanted is not None and str(wanted) in self.windows:
            table.move_cursor(row=list(self.windows).index(str(wanted)), animate=False)
        self._show_detail(self.selected_window())

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        window = self.selected_window()
        self._show_detail(window)
        if window is not None:
            self.load_events(window.id)

    @work(exclusive=True, group="maintenance-events")
    async def load_events(self, maintenance_id: int) -> None:
        try:
            window = await self.monitor.reader.maintenance(maintenance_id)
        except StoreError:
            return  # the list still shows it; its events come with the next highlight
        selected = self.selected_window()
        if window is not None and selected is not None and selected.id == window.id:
            self._show_detail(window)

    def _show_detail(self, window: Maintenance | None) -> None:
        widget = self.query_one("#window-detail", Static)
        if window is None:
            widget.update(Text("No maintenance windows in the last 7 days or ahead.", style="dim"))
            return
        widget.update(window_text(window, self.monitor.clock.wall(), self.monitor.tz))

    # -- s: schedule --------------------------------------------------------------------------

    def action_schedule(self) -> None:
        if not self.monitor.permitted(Action.MAINTENANCE):
            return

        def scheduled(window_id: int | None) -> None:
            if window_id is not None:
                self._focus_id = window_id
                self.monitor.tell(f"Maintenance #{window_id} scheduled; subscribers are told.")
                self.monitor.refresh_now()

        self.app.push_screen(ScheduleModal(), scheduled)

    # -- x: cancel ----------------------------------------------------------------------------

    def action_cancel_window(self) -> None:
        if not self.monitor.permitted(Action.MAINTENANCE):
            return
        window = self.selected_window()
        now = self.monitor.clock.wall()
        if window is None:
            self.monitor.tell("Select a window first: x cancels it.", "warning")
            return
        state = window_state(window, now)
        if state in ("cancelled", "completed"):
            self.monitor.tell(f"Maintenance #{window.id} is {state}: nothing to cancel.", "warning")
            return
        question = (
            f"#{window.id} {bounded(window.title, TITLE_SHOWN)}\n"
            f"{utc(window.starts_at)} → {utc(window.ends_at)} ({state})\n"
            f"Components: {keys_cell(window.components)}\n\n"
            + (
                "It is active: its components stop reading under maintenance and their alerts "
                "are sent again. "
                if state == "active"
                else ""
            )
            + "Subscribers are told it was cancelled."
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.run_cancel(window.id)

        self.app.push_screen(
            ConfirmModal("Cancel maintenance?", question, yes="Cancel window"), answered
        )

    @work(exclusive=True, group="maintenance-write")
    async def run_cancel(self, maintenance_id: int) -> None:
        monitor = self.monitor
        try:
            await public_actions.cancel_maintenance(
                monitor.reader,
                monitor.writer,
                maintenance_id,
                by=monitor.actor,
                at=monitor.clock.wall(),
            )
        except PublicActionError as error:
            monitor.tell(f"Not cancelled: {error}.", "warning", timeout=20)
            return
        except StoreError as error:
            monitor.tell(store_problem(error), "error", timeout=20)
            return
        monitor.tell(f"Maintenance #{maintenance_id} cancelled; subscribers are told.")
        monitor.refresh_now()


def _when(at: float, tz: tzinfo) -> str:
    """``11-14 23:13 UTC``: a table cell (the panel below gives the year and seconds)."""
    return datetime.fromtimestamp(at, tz).strftime("%m-%d %H:%M %Z").rstrip()


def _rank(window: Maintenance, now: float) -> tuple[int, float]:
    """Active first, then upcoming by start, then the ended and cancelled, latest first."""
    state = window_state(window, now)
    order = _ORDER[state]
    return (order, window.starts_at if order < 2 else -window.ends_at)


def window_text(window: Maintenance, now: float, tz: tzinfo) -> Text:
    """The panel under the table: title, times, every component, message, who and the events."""
    text = Text()
    text.append(f"#{window.id} ", style="bold")
    text.append(bounded(window.title, public_actions.MAX_TITLE), style="bold")
    text.append(f"\n{timestamp(window.starts_at, tz)} → {timestamp(window.ends_at, tz)}", "dim")
    text.append(f"  ({window_state(window, now)})", style="dim")
    text.append("\nComponents: ", style="bold")
    text.append(", ".join(bounded(key, 80) for key in window.components))
    text.append(f"\nScheduled by {bounded(window.created_by, NAME_SHOWN)}", style="dim")
    text.append(f" at {timestamp(window.created_at, tz)}", style="dim")
    if window.cancelled_at is not None:
        who = f" by {bounded(window.cancelled_by, NAME_SHOWN)}" if window.cancelled_by else ""
        text.append(f"\nCancelled{who} at {timestamp(window.cancelled_at, tz)}", style="yellow")
    if window.message:
        text.append("\n\n")
        text.append(long_text(window.message))
    for event in window.events:
        text.append(f"\n{timestamp(event.at, tz)}  ", style="dim")
        text.append(f"{bounded(event.kind, 20):<14}", style="bold")
        text.append(bounded(event.text, 300))
    return text
