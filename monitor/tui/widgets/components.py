"""The main screen's table: one row per target and per service, in the config's order.

Two layouts: wide (120 columns and more) with a column per figure, and compact (an 80-column
terminal) with the three uptimes in one cell and short "since" durations. The cursor stays on the
same component across refreshes and filtering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from monitor.tui.data import ComponentRow, Overview
from monitor.tui.formatting import DASH, millis, since
from monitor.tui.widgets.sparkline import spark
from monitor.tui.widgets.status import breaker_text, status_text
from monitor.tui.widgets.uptime import uptime_text, uptime_triple

COMPACT_BELOW = 120
"""Terminal widths under this get the compact layout."""


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
    Column("recent", "Recent checks", 20),
    Column("up24h", "24 h %", 6),
    Column("up7d", "7 d %", 6),
    Column("up30d", "30 d %", 6),
    Column("fails", "Fails", 5),
    Column("since", "Since", 15),
    Column("error", "Last error", 22),
)
COMPACT = (
    Column("component", "Component", 14),
    Column("status", "Status", 12),
    Column("breaker", "Breaker", 10),
    Column("response", "Resp", 7),
    Column("recent", "Recent", 8),
    Column("uptime", f"{'24h':>4} {'7d':>4} {'30d':>4}", 15),
    Column("fails", "Fail", 5),
    Column("since", "Since", 6),
)
"""Compact widths include the one-cell gap (the compact table has no cell padding)."""


def visible_rows(rows: Sequence[ComponentRow], needle: str) -> list[ComponentRow]:
    """Rows matching ``needle``, each with its target's row for context; a target matched by
    name brings all its services."""
    needle = needle.strip().lower()
    if not needle:
        return list(rows)
    shown: list[ComponentRow] = []
    groups: dict[str, list[ComponentRow]] = {}
    for row in rows:
        groups.setdefault(row.target, []).append(row)
    for members in groups.values():
        head, services = members[0], members[1:]
        if head.matches_name(needle):
            shown.extend(members)
            continue
        hits = [row for row in services if row.matches(needle)]
        if hits or head.matches(needle):
            shown.extend([head, *hits])
    return shown


class ComponentsTable(DataTable[Text | str]):
    DEFAULT_CSS = """
    ComponentsTable {
        height: 1fr;
    }
    """

    def __init__(self, *, tz: tzinfo, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.tz = tz
        self.compact: bool | None = None
        self.keys: list[str] = []
        self.rows_by_key: dict[str, ComponentRow] = {}

    def selected(self) -> ComponentRow | None:
        if not self.keys or not 0 <= self.cursor_row < len(self.keys):
            return None
        return self.rows_by_key.get(self.keys[self.cursor_row])

    def show(self, overview: Overview, needle: str, *, compact: bool) -> None:
        previous = self.selected()
        if compact != self.compact:
            self.compact = compact
            self.clear(columns=True)
            self.cell_padding = 0 if compact else 1
            for column in COMPACT if compact else WIDE:
                self.add_column(column.label, key=column.key, width=column.width)
        else:
            self.clear()
        rows = visible_rows(overview.rows, needle)
        self.keys = [row.key for row in rows]
        self.rows_by_key = {row.key: row for row in rows}
        for row in rows:
            cells = (
                self._compact_cells(row, overview.now)
                if compact
                else self._wide_cells(row, overview.now)
            )
            self.add_row(*cells, key=row.key)
        if previous is not None and previous.key in self.rows_by_key:
            self.move_cursor(row=self.keys.index(previous.key), animate=False)

    def cell_text(self, key: str, column: str) -> str:
        """The plain text of one cell (for tests and the command palette)."""
        columns = [c.key for c in (COMPACT if self.compact else WIDE)]
        value = self.get_cell_at(Coordinate(self.keys.index(key), columns.index(column)))
        return value.plain if isinstance(value, Text) else str(value)

    def _component(self, row: ComponentRow) -> Text:
        if row.is_target:
            return Text(row.title, style="bold")
        return Text(f"  {row.title}")

    def _breaker(self, row: ComponentRow) -> Text:
        if row.is_target:
            return Text("")
        return breaker_text(row.shown_breaker, reset=row.reset_to is not None)

    def _fails(self, row: ComponentRow) -> Text:
        if row.failures is None:
            return Text(DASH, style="dim")
        return Text(str(row.failures), style="bold red" if row.failures else "")

    def _wide_cells(self, row: ComponentRow, now: float) -> list[Text | str]:
        day, week, month = row.uptime
        return [
            self._component(row),
            status_text(row.status),
            self._breaker(row),
            Text(millis(row.response_ms), justify="right"),
            spark(row.recent, 20),
            uptime_text(day),
            uptime_text(week),
            uptime_text(month),
            self._fails(row),
            since(row.since, self.tz, now, compact=False),
            Text(row.error or "", style="red"),
        ]

    def _compact_cells(self, row: ComponentRow, now: float) -> list[Text | str]:
        cells: list[Text] = [
            self._component(row),
            status_text(row.status),
            self._breaker(row),
            Text(millis(row.response_ms)),
            spark(row.recent, 7),
            uptime_triple(row.uptime),
            self._fails(row),
            Text(since(row.since, self.tz, now, compact=True)),
        ]
        # No cell padding here: crop each cell one short of its column, keeping a gap.
        cropped: list[Text | str] = []
        for column, cell in zip(COMPACT, cells, strict=True):
            cell.truncate(column.width - 1, overflow="ellipsis")
            cropped.append(cell)
        return cropped
