"""The overview's uptime figures (the last day, week and month) of many components at once.

The figures are :func:`monitor.figures.read_uptimes`' — the same function and rounding as the
status page's and its JSON's — one read of each period's roll-ups for every component.

They used to be kept for a minute: 25 s into an outage the TUI still said 100 % while the page
said 82.78 %. Now a component's figures are kept only while they cannot have changed: every
window at 100 % and the component up (healthy or degraded) without a change of state since they
were read — every check since then served, so each window is still 100 %. Anything else is read
again on every refresh (a fleet that is all well costs no reads; one in trouble, its rows').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.figures import TUI_WINDOWS, SeriesReader, Uptime, read_uptimes
from monitor.store.models import ComponentState, Status

UPTIME_WINDOWS = TUI_WINDOWS

Uptimes = tuple[float | None, float | None, float | None]
"""Uptime in percent over each of :data:`UPTIME_WINDOWS`, as shown (rounded down to two
decimals; None: no check in it)."""

_UP = (Status.HEALTHY, Status.DEGRADED)
"""What the roll-ups count as served."""


def shown(figures: Sequence[Uptime]) -> Uptimes:
    day, week, month = (figure.value for figure in figures)
    return (day, week, month)


@dataclass(frozen=True, slots=True)
class _Kept:
    state: tuple[Status, float] | None
    read_at: float
    uptimes: Uptimes


class UptimeCache:
    """Each component's :data:`Uptimes`, re-read unless provably unchanged (see the module)."""

    def __init__(self, *, ttl: float = 600.0) -> None:
        self.ttl = ttl
        """An upper bound on keeping even an unchanged 100 % (a clock jump, a store replaced)."""
        self._kept: dict[tuple[str, str], _Kept] = {}

    async def read(
        self,
        reader: SeriesReader,
        components: Sequence[tuple[str, str]],
        states: Mapping[tuple[str, str], ComponentState],
        now: float,
    ) -> dict[tuple[str, str], Uptimes]:
        found: dict[tuple[str, str], Uptimes] = {}
        missing = []
        for key in components:
            kept = self._kept.get(key)
            if kept is not None and self._still(kept, states.get(key), now):
                found[key] = kept.uptimes
            else:
                missing.append(key)
        if missing:
            read = await read_uptimes(reader, missing, now, UPTIME_WINDOWS)
            for key, figures in read.items():
                state = states.get(key)
                found[key] = shown(figures)
                self._kept[key] = _Kept(
                    (state.status, state.since) if state is not None else None, now, found[key]
                )
        return found

    def _still(self, kept: _Kept, state: ComponentState | None, now: float) -> bool:
        return (
            0 <= now - kept.read_at < self.ttl
            and all(value == 100.0 for value in kept.uptimes)
            and state is not None
            and state.status in _UP
            and kept.state == (state.status, state.since)
        )
