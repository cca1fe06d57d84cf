"""The main screen's table: one row per target and per service, in the config's order, and under
a target with several replicas a heading row (``▾ 3 replicas``) and one row per replica; then one
row per ``[[checks]]`` entry (its kind beside its name, ``⊘`` when private).

Two layouts: wide (120 columns and more) with a column per figure, and compact (an 80-column
terminal) with the three uptimes in one cell and short "since" durations. The cursor stays on the
same row across refreshes and filtering. Replica rows fold under their heading (space, or enter
on the heading); a target's folding is kept across refreshes, and starts folded when it has more
than :data:`EXPANDED_UP_TO` replicas.

Every cell is a :class:`LazyCell`: its text is built from the row's current value when the table
draws it. A refresh that leaves the same rows in the same order (the common case: new figures,
nothing added or folded) swaps the values and drops the table's drawing caches; the table is not
rebuilt, only the rows on screen are drawn again, and the scroll position holds. So a fleet of a
thousand replicas refreshes in milliseconds (benchmarks/tui_fleet.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from monitor.store import TARGET_COMPONENT, Status
from monitor.tui.checks import check_cell, run_text
from monitor.tui.data import ComponentRow, Overview, ReplicaRow
from monitor.tui.formatting import DASH, duration, last_error, millis, since
from monitor.tui.widgets.sparkline import spark
from monitor.tui.widgets.status import (
    breaker_text,
    maintenance_text,
    spread_text,
    status_text,
)
from monitor.tui.widgets.uptime import figure_text, uptime_triple

SegmentLines = list[list[Segment]]
"""A drawn cell (as DataTable's own ``_render_cell`` returns it)."""

COMPACT_BELOW = 120
"""Terminal widths under this get the compact layout."""
EXPANDED_UP_TO = 5
"""A target with more replicas than this starts with its replica rows folded."""
DRAWN_CELLS_KEPT = 4096
"""Drawn cells kept for the next refresh (a few screens' worth; then the cache starts over)."""
BREAKER_WIDEST = 18
"""The wide breaker column grows to fit ``half-open on 12/64`` and no further."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int


WIDE = (
    Column("component", "Component", 22),
    Column("status", "Status", 13),
    Column("breaker", "Breaker", 11),
    Column("response", "Response", 8),
    Column("recent", "Recent", 10),
    Column("up24h", "24 h", 6),
    Column("up7d", "7 d", 6),
    Column("up30d", "30 d", 6),
    Column("fails", "Fails", 5),
    Column("since", "Since", 15),
    Column("error", "Last error", 34),
)
"""The last error is wide enough for ``CircuitBreakerOpenError, 3 min ago``: an error with its age
(the recent checks give up the room)."""
COMPACT = (
    Column("component", "Component", 14),
    Column("status", "Status", 12),
    Column("breaker", "Breaker", 10),
    Column("response", "Resp", 7),
    Column("recent", "Trend", 6),
    Column("uptime", f"{'24h %':>5} {'7d %':>5} {'30d %':>5}", 18),
    Column("fails", "Fail", 5),
    Column("since", "Since", 6),
)
"""Compact widths include the one-cell gap (the compact table has no cell padding)."""


@dataclass(frozen=True, slots=True)
class ReplicaHeading:
    """The row that folds a target's replica rows: ``▾ 3 replicas`` and the worst of them."""

    target: str
    replicas: tuple[ReplicaRow, ...]
    expanded: bool

    @property
    def key(self) -> str:
        return heading_key(self.target)


def heading_key(target: str) -> str:
    return f"replicas\x1f{target}"


def target_key(target: str) -> str:
    return ComponentRow(target, TARGET_COMPONENT, "", Status.UNKNOWN).key


Entry = ComponentRow | ReplicaHeading | ReplicaRow
Cells = tuple[Text, ...]


def visible_rows(rows: Sequence[ComponentRow], needle: str) -> list[ComponentRow]:
    """Rows matching ``needle``, each with its target's row for context; a target matched by
    name brings all its services."""
    return [
        entry
        for entry in visible_entries(rows, {}, needle, lambda target, count: False)
        if isinstance(entry, ComponentRow)
    ]


def visible_entries(
    rows: Sequence[ComponentRow],
    replicas: Mapping[str, tuple[ReplicaRow, ...]],
    needle: str,
    expanded: Callable[[str, int], bool],
) -> list[Entry]:
    """The table's rows in order: each target, its services, then (if it has replicas) the
    heading and, unless folded, the replicas. A filter shows the rows that match it with their
    target's row; a replica that matches shows even when its target is folded."""
    needle = needle.strip().lower()
    groups: dict[str, list[ComponentRow]] = {}
    for row in rows:
        groups.setdefault(row.target, []).append(row)
    shown: list[Entry] = []
    for target, members in groups.items():
        head, services = members[0], members[1:]
        fleet = replicas.get(target, ())
        unfolded = bool(fleet) and expanded(target, len(fleet))
        if not needle or head.matches_name(needle):
            picked, fleet_shown = services, list(fleet) if unfolded else []
        else:
            picked = [row for row in services if row.matches(needle)]
            fleet_shown = [replica for replica in fleet if replica.matches(needle)]
            if not (picked or fleet_shown or head.matches(needle)):
                continue
        shown.append(head)
        shown.extend(picked)
        if fleet:
            shown.append(ReplicaHeading(target, fleet, unfolded))
            shown.extend(fleet_shown)
    return shown


class _Expanded:
    """Whether a target's replicas are unfolded: the operator's choice, else by their count."""

    def __init__(self) -> None:
        self.choices: dict[str, bool] = {}

    def __call__(self, target: str, count: int) -> bool:
        return self.choices.get(target, count <= EXPANDED_UP_TO)


class ComponentsTable(DataTable["LazyCell"]):
    DEFAULT_CSS = """
    ComponentsTable {
        height: 1fr;
    }
    """

    def __init__(self, *, tz: tzinfo, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.tz = tz
        self.compact: bool | None = None
        self.breaker_width = 0
        self.keys: list[str] = []
        self.entries: dict[str, Entry] = {}
        self.rows_by_key: dict[str, ComponentRow] = {}
        self.expanded = _Expanded()
        self.now = 0.0
        self._drawn: dict[Hashable, SegmentLines] = {}
        self._cells: dict[str, Cells] = {}
        self._last: tuple[Overview, str] | None = None

    # -- what is selected ---------------------------------------------------------------------

    def selected_entry(self) -> Entry | None:
        if not self.keys or not 0 <= self.cursor_row < len(self.keys):
            return None
        return self.entries.get(self.keys[self.cursor_row])

    def selected(self) -> ComponentRow | None:
        """The selected component; on a replica row or a heading, the replicas' target."""
        entry = self.selected_entry()
        if entry is None or isinstance(entry, ComponentRow):
            return entry
        return self.rows_by_key.get(target_key(entry.target))

    def toggle_replicas(self) -> bool:
        """Fold or unfold the replicas of the selected row's target; False if it has none."""
        entry = self.selected_entry()
        if entry is None or self._last is None:
            return False
        fleet = self._last[0].replicas.get(entry.target, ())
        if not fleet:
            return False
        unfolded = self.expanded(entry.target, len(fleet))
        self.expanded.choices[entry.target] = not unfolded
        if unfolded and isinstance(entry, ReplicaRow):
            # The cursor's row is folding away: it lands on the heading.
            self.move_cursor(row=self.keys.index(heading_key(entry.target)), animate=False)
        overview, needle = self._last
        self.show(overview, needle, compact=bool(self.compact))
        return True

    # -- drawing ------------------------------------------------------------------------------

    def show(self, overview: Overview, needle: str, *, compact: bool) -> None:
        self._last = (overview, needle)
        entries = visible_entries(overview.rows, overview.replicas, needle, self.expanded)
        keys = [entry.key for entry in entries]
        breaker_width = self._breaker_width(entries, compact)
        self.entries = {entry.key: entry for entry in entries}
        self.rows_by_key = {e.key: e for e in entries if isinstance(e, ComponentRow)}
        self.now = overview.now
        self._cells = {}  # every cell is drawn again from the new entries, when it is drawn
        if (compact, breaker_width) == (self.compact, self.breaker_width) and keys == self.keys:
            if keys:
                # The same rows: their cells are lazy and read self.entries, so rewriting one
                # cell (with itself) is enough to drop the table's caches of drawn cells.
                self.update_cell_at(Coordinate(0, 0), self.get_cell_at(Coordinate(0, 0)))
            return
        previous = self.keys[self.cursor_row] if 0 <= self.cursor_row < len(self.keys) else None
        if (compact, breaker_width) != (self.compact, self.breaker_width):
            self.compact, self.breaker_width = compact, breaker_width
            self.clear(columns=True)
            self.cell_padding = 0 if compact else 1
            for column in self._columns():
                self.add_column(column.label, key=column.key, width=column.width)
        else:
            self.clear()
        self.keys = keys
        widths = [column.width for column in self._columns()]
        for key in keys:
            self.add_row(*(LazyCell(self, key, n, w) for n, w in enumerate(widths)), key=key)
        if previous is not None and previous in self.entries:
            self.move_cursor(row=keys.index(previous), animate=False)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        """A cell drawn as before when its text is the same: the table drops every drawn cell
        when any changes (its caches are keyed by a count of updates), and drawing the cells on
        screen again was most of a refresh. Keyed by what the drawing depends on: the text, and
        the position, width and highlight the table passes in. Other cells (the header) are
        the table's own business."""
        key = self.keys[row_index] if 0 <= row_index < len(self.keys) else None
        if key is None or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        text = self.cells(key)[column_index]
        cache_key = (
            key,
            row_index,
            column_index,
            base_style,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
            text.plain,
            text.style,
            tuple(text.spans),
            text.justify,
        )
        lines = self._drawn.get(cache_key)
        if lines is None:
            if len(self._drawn) > DRAWN_CELLS_KEPT:
                self._drawn.clear()
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._drawn[cache_key] = lines
        return lines

    def cells(self, key: str) -> Cells:
        """The cells of row ``key`` as they are drawn now (built once per refresh, when first
        drawn: a refresh costs the rows on screen, not the thousand off it)."""
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells_of(self.entries[key], self.now, bool(self.compact))
            self._cells[key] = cells
        return cells

    def _columns(self) -> tuple[Column, ...]:
        if self.compact:
            return COMPACT
        width = max(WIDE[2].width, self.breaker_width)
        return (*WIDE[:2], Column("breaker", "Breaker", width), *WIDE[3:])

    def _breaker_width(self, entries: Sequence[Entry], compact: bool) -> int:
        """The wide breaker column as wide as its longest ``open on 2/3`` (one-replica targets
        keep the width they always had)."""
        if compact:
            return COMPACT[2].width
        longest = max(
            (
                self._breaker(entry, compact=False).cell_len
                for entry in entries
                if isinstance(entry, ComponentRow) and entry.replica_breakers
            ),
            default=0,
        )
        return min(max(WIDE[2].width, longest), BREAKER_WIDEST)

    def cell_text(self, key: str, column: str) -> str:
        """The plain text of one cell (for tests and the command palette)."""
        columns = [c.key for c in self._columns()]
        return self.cells(key)[columns.index(column)].plain

    # -- cells --------------------------------------------------------------------------------

    def _cells_of(self, entry: Entry, now: float, compact: bool) -> Cells:
        if isinstance(entry, ComponentRow):
            return self._compact_cells(entry, now) if compact else self._wide_cells(entry, now)
        if isinstance(entry, ReplicaHeading):
            cells = self._heading_cells(entry, compact)
        else:
            cells = self._replica_cells(entry, now, compact)
        return _cropped(cells) if compact else tuple(cells)

    def _component(self, row: ComponentRow) -> Text:
        if row.is_check:
            return check_cell(row, COMPACT[0].width - 1 if self.compact else WIDE[0].width)
        if row.is_target:
            return Text(row.title, style="bold")
        return Text(f"  {row.title}")

    def _breaker(self, row: ComponentRow, compact: bool) -> Text:
        if row.is_target:
            return Text("")
        spread = row.spread
        if spread is None:
            return breaker_text(row.shown_breaker, reset=row.reset_to is not None)
        return spread_text(spread, reset=row.replicas_reset > 0, compact=compact)

    def _fails(self, row: ComponentRow) -> Text:
        if row.failures is None:
            return Text(DASH, style="dim")
        return Text(str(row.failures), style="bold red" if row.failures else "")

    def _wide_cells(self, row: ComponentRow, now: float) -> Cells:
        day, week, month = row.uptime
        return (
            self._component(row),
            _status(row, compact=False),
            self._breaker(row, compact=False),
            Text(millis(row.response_ms), justify="right"),
            spark(row.recent, WIDE[4].width),
            figure_text(day),
            figure_text(week),
            figure_text(month),
            self._fails(row),
            Text(since(row.since, self.tz, now, compact=False)),
            run_text(row, WIDE[-1].width)
            if row.is_check
            else error_text(row.error, row.details.get("last_error_at"), now),
        )

    def _compact_cells(self, row: ComponentRow, now: float) -> Cells:
        return _cropped(
            [
                self._component(row),
                _status(row, compact=True),
                self._breaker(row, compact=True),
                Text(millis(row.response_ms)),
                spark(row.recent, COMPACT[4].width - 1),
                uptime_triple(row.uptime),
                self._fails(row),
                Text(since(row.since, self.tz, now, compact=True)),
            ]
        )

    def _heading_cells(self, heading: ReplicaHeading, compact: bool) -> list[Text]:
        count = len(heading.replicas)
        fold = "▾" if heading.expanded else "▸"
        label = Text(f"  {fold} {count} replica{'s' if count != 1 else ''}", style="italic")
        worst = max((r.status for r in heading.replicas), key=lambda s: s.severity)
        bad: dict[Status, int] = {}
        for replica in heading.replicas:
            if replica.status not in (Status.HEALTHY, Status.UNKNOWN):
                bad[replica.status] = bad.get(replica.status, 0) + 1
        summary = Text(
            ", ".join(f"{n}/{count} {status.value}" for status, n in bad.items()), style="red"
        )
        blank = Text("")
        if compact:
            return [label, status_text(worst), blank, blank, blank, summary, blank, blank]
        return [label, status_text(worst), *[blank] * 8, summary]

    def _replica_cells(self, replica: ReplicaRow, now: float, compact: bool) -> list[Text]:
        label = Text(f"    {replica.label}", style="cyan")
        label.truncate(
            (COMPACT if compact else WIDE)[0].width - (1 if compact else 0), overflow="ellipsis"
        )
        instance = Text(replica.instance or DASH, style="" if replica.instance else "dim")
        if replica.started_at is not None:
            instance.append(f" · up {duration(now - replica.started_at)}", style="dim")
        breaker = self._replica_breaker(replica)
        status = status_text(replica.status)
        latency = Text(millis(replica.latency_ms), justify="right")
        blank = Text("")
        if compact:
            shown_since = Text(since(replica.since, self.tz, now, compact=True))
            return [label, status, breaker, latency, blank, instance, blank, shown_since]
        return [
            label,
            status,
            breaker,
            latency,
            instance,
            blank,
            blank,
            blank,
            blank,
            Text(since(replica.since, self.tz, now, compact=False)),
            error_text(replica.error, None, now),
        ]

    def _replica_breaker(self, replica: ReplicaRow) -> Text:
        """``closed`` when all its breakers are, else the worst one with its service's name."""
        worst = replica.worst_breaker
        if worst is None:
            return Text(DASH, style="dim")
        service, state = worst
        reset = service in replica.reset_services
        if state == "closed":
            return breaker_text("closed", reset=bool(replica.reset_services))
        text = Text(f"{service} ")
        return text.append_text(breaker_text(state, reset=reset))


def _status(row: ComponentRow, compact: bool) -> Text:
    """Its status; ``maintenance`` while an active window covers it, as the status page says
    (the measured status is on its detail screen)."""
    if row.maintenance is not None:
        return maintenance_text(compact=compact)
    return status_text(row.status)


def error_text(error: str | None, at: object, now: float) -> Text:
    """The last error cell: the error with its age when the check said when it happened
    (``CircuitBreakerOpenError, 3 min ago``), cut between words to the column, never inside one
    (:func:`monitor.tui.formatting.last_error`, as the detail screen shows it)."""
    if not error:
        return Text("")
    when = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
    return Text(last_error(error, when, now, WIDE[-1].width), style="red")


def _cropped(cells: list[Text]) -> Cells:
    # No cell padding in the compact layout: crop each cell one short of its column, keeping a gap.
    for column, cell in zip(COMPACT, cells, strict=True):
        cell.truncate(column.width - 1, overflow="ellipsis")
    return tuple(cells)


class LazyCell:
    """A cell that is drawn from its row's entry when the table draws it, never before.

    Building the text of 1,500 rows × 11 cells at every refresh cost more than the 50 ms a
    refresh may take; the table draws only the rows on screen. Its width is its column's, so
    measuring a new row builds nothing either."""

    __slots__ = ("column", "key", "table", "width")

    def __init__(self, table: ComponentsTable, key: str, column: int, width: int) -> None:
        self.table = table
        self.key = key
        self.column = column
        self.width = width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table.cells(self.key)[self.column]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)
