"""One set of numbers: a component's uptime over a window, as the TUI, the status page and its
JSON all show it.

**What uptime is.** The share of a component's checks in a window in which it served (healthy or
degraded: what the roll-ups count as ``up``), from the roll-ups only. Manual checks (the TUI's
"check now") never enter the roll-ups, so they never move it.

**The window.** The ``n`` most recent periods of the window's roll-up length, the current
(partial) one included: 24 h is this hour and the 23 before it, 30 d is today and the 29 days
before. The page's 90 days are the same rule with days (the bars it draws), so the 90-day figure
is exactly the sum of the bars under it. The TUI used to count the periods that start inside the
window (one more at an exact boundary) and, worse, kept its figures for a minute while the page
re-read them on every change: 25 s into an outage the two disagreed (100 % against 82.78 %).

**Rounding.** Down, to two decimals, computed from the integer counts (no float can round a
failure away): ``100%`` only when every check in the window served, so one failed check in
100,000 reads ``99.99%``, never ``100%``. No check in the window reads ``no data``.

**Units.** :meth:`Uptime.text` is the figure with its unit (``99.95%``), the form the page has
always printed; :attr:`Uptime.value` is the same rounded figure as a number (for JSON), and
:attr:`Window.label` names the window (``24 h``) wherever a figure is shown beside another.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.store.models import BarSeries

HOUR = 3600
DAY = 86400
NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class Window:
    label: str
    """How screens name it: ``24 h``, ``7 d``, ``30 d``, ``90 d``."""
    periods: int
    """How many periods, the current one included."""
    period: str
    """The roll-up period it is read in: ``hour`` or ``day``."""

    @property
    def length(self) -> int:
        return HOUR if self.period == "hour" else DAY

    @property
    def key(self) -> str:
        """A name for JSON: ``24h``, ``7d``, ``30d``, ``90d``."""
        return self.label.replace(" ", "")

    def first(self, now: float) -> int:
        """Start of the window's first period (the current period's start, ``periods - 1``
        periods back)."""
        return int(now // self.length) * self.length - (self.periods - 1) * self.length


LAST_24H = Window("24 h", 24, "hour")
LAST_7D = Window("7 d", 7, "day")
LAST_30D = Window("30 d", 30, "day")
LAST_90D = Window("90 d", 90, "day")
TUI_WINDOWS = (LAST_24H, LAST_7D, LAST_30D)
"""The three figures of the TUI's rows."""
PAGE_WINDOW = LAST_90D
"""The status page's figure: the span of its bars."""


@dataclass(frozen=True, slots=True)
class Uptime:
    """A component's checks in a window and how many of them it served in."""

    checks: int = 0
    up: int = 0

    @property
    def known(self) -> bool:
        return self.checks > 0

    @property
    def hundredths(self) -> int | None:
        """The figure in hundredths of a percent, rounded down; None without checks."""
        if not self.checks:
            return None
        return (self.up * 10_000) // self.checks  # integers: exact, 100.00 only when all up

    @property
    def value(self) -> float | None:
        """The shown figure as a number (``99.95``), None without checks."""
        hundredths = self.hundredths
        return None if hundredths is None else hundredths / 100

    @property
    def exact(self) -> float | None:
        """Unrounded (for colouring and comparisons, never for display)."""
        return 100.0 * self.up / self.checks if self.checks else None

    @property
    def text(self) -> str:
        """``99.95%``, ``100%``, ``no data``."""
        return _hundredths_text(self.hundredths)

    def __add__(self, other: Uptime) -> Uptime:
        return Uptime(self.checks + other.checks, self.up + other.up)


def percent_text(value: float | None) -> str:
    """A percentage as every output prints it: rounded down to two decimals (``99.996`` is
    ``99.99%``), ``100%`` only for 100, ``no data`` for None."""
    if value is None:
        return NO_DATA
    # round() first: a figure already rounded (99.95 is 9994.999… hundredths) stays itself.
    return _hundredths_text(math.floor(round(value * 100, 6)))


def _hundredths_text(hundredths: int | None) -> str:
    if hundredths is None:
        return NO_DATA
    if hundredths >= 10_000:
        return "100%"
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def uptime(series: BarSeries | None, window: Window, now: float) -> Uptime:
    """The component's uptime over ``window`` from its roll-ups ``series`` (periods of the
    window's length; only the periods inside the window count, whatever else it holds)."""
    if series is None or series.length != window.length:
        return Uptime()
    first = window.first(now)
    last = first + (window.periods - 1) * window.length
    lo = max(0, (first - series.first) // series.length)
    hi = min(len(series), (last - series.first) // series.length + 1)
    if hi <= lo:
        return Uptime()
    return Uptime(sum(series.checks[lo:hi]), sum(series.up[lo:hi]))


class SeriesReader(Protocol):
    """The one read these figures need (:meth:`monitor.store.ports.HistoryRead.series_many`)."""

    async def series_many(
        self,
        components: Sequence[tuple[str, str]],
        *,
        period: str = "day",
        count: int = 90,
        now: float,
    ) -> dict[tuple[str, str], BarSeries]: ...


async def read_uptimes(
    reader: SeriesReader,
    components: Sequence[tuple[str, str]],
    now: float,
    windows: Iterable[Window] = TUI_WINDOWS,
) -> dict[tuple[str, str], tuple[Uptime, ...]]:
    """Each component's :func:`uptime` over each of ``windows``, from one read of each period's
    roll-ups for every component at once (a fleet's rows are a few statements, not thousands)."""
    wanted = tuple(windows)
    longest: dict[str, int] = {}
    for window in wanted:
        longest[window.period] = max(longest.get(window.period, 0), window.periods)
    series = {
        period: await reader.series_many(components, period=period, count=count, now=now)
        for period, count in longest.items()
    }
    return {
        key: tuple(uptime(series[w.period].get(key), w, now) for w in wanted) for key in components
    }
