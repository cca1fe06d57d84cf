"""The keys, what the marks mean, and where the command palette is."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("↑ ↓", "move between targets and services"),
    ("enter", "detail of the selected service: latency chart, timeline, incidents, breaker, pool"),
    ("space", "fold or unfold the replica rows of the selected target (enter on ▸/▾ too)"),
    ("r", "reset the selected service's breaker on every replica (asks first; admin token)"),
    ("c", "check the selected target or check now (writes the result to the history)"),
    ("n", "add a note to the open incident of the selected service"),
    ("/", "filter by target, service, status or breaker state (esc clears)"),
    (
        "a",
        "alerts, firing first; on the alerts screen, acknowledge the selected one (no reminders)",
    ),
    ("s", "on the alerts screen: silence the selected alert's component (30m, 2h, 1d; up to 7d)"),
    ("i", "incidents with their timelines"),
    (
        "o u p",
        "on the incidents screen: open an incident for the status page, post an update on the "
        "selected one (takes an automatic one over: the monitor stops resolving it), write the "
        "postmortem of a resolved one",
    ),
    ("m", "maintenance windows: active, upcoming, recent"),
    ("s x", "on the maintenance screen: schedule a window, cancel the selected one (asks first)"),
    ("esc", "back"),
    ("? or F1", "this help"),
    ("ctrl+p", "command palette: every action by name, and the theme"),
    ("q", "quit"),
    (
        "",
        "r c n, acking, silencing and writing incidents or maintenance need an operator or "
        "admin: a viewer reads only",
    ),
)

MARKS = (
    ("● healthy", "green: every check passed"),
    ("▲ degraded", "yellow: serving, something is wrong (a non-critical service is down)"),
    ("✖ unhealthy", "red: a critical service is down"),
    ("✖ unreachable", "red: the target's health API did not answer"),
    ("? unknown", "no check yet"),
    ("OPEN / half-open", "breaker state; ↺ = reset from here, not yet seen by a check"),
    ("open on 2/3", "the worst breaker state among a service's replicas, and on how many"),
    ("Front door http ⊘", "a check ([[checks]]) and its kind; ⊘ = private: not on the status page"),
    ("certificate expires in …", "yellow on a healthy check: a warning (a tls check's warn_days)"),
    ("▾ 3 replicas", "each replica's own figures below it; ▸ = folded (space)"),
    ("NO MONITOR IS LEADING", "the lease is older than 2 × its ttl: no check is being made"),
    ("▁▂▃▅▇", "response times of the recent checks, oldest first"),
    (
        "Components operational — …",
        "alerts still fire: why (resolving through the hold-down, or held)",
    ),
    ("⚠ The monitor …", "an alert about the monitor itself (its token, its checks, its store)"),
    ("⚙ the monitor", "on the alerts screen: that alert is about the monitor, not a component"),
    ("silenced until 23:40 by …", "recorded and shown, not sent to the notifiers until then"),
    ("█ ▄ ▁ ·", "timeline blocks: served, degraded, down, no check"),
)


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1,q", "app.pop_screen", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self._render_help())

    def _render_help(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        table.add_row(Text("QuestCity on-call: keys", style="bold"), "")
        for key, what in KEYS:
            table.add_row(key, what)
        table.add_row("", "")
        table.add_row(Text("What the marks mean", style="bold"), "")
        for mark, what in MARKS:
            table.add_row(mark, what)
        return table
