"""The leader's eye on the maintenance windows (issue #15): it marks each window ``started`` when
it becomes active and ``completed`` when it ends (a cancelled one is neither: its cancellation
said it all), on the check clock, from the windows the alert engine last read.

Only the leader runs it (a daemon runs only while it leads), and the store makes each mark once
(:meth:`HistoryWrite.mark_maintenance` answers False when another monitor already did it — a
deposed leader and its successor may both see the same end), so subscribers are told once. A
store that refuses a mark is logged and the mark tried again at the next look; a lost lease
propagates, as from any of the leader's writes. A window that ended while no monitor led is
still marked completed by the next leader: one marked started however long ago it ended, one
never seen starting if it ended within :data:`~monitor.alerting.quiet.WINDOWS_LOOKBACK`; the
held incidents are the tracker's (:mod:`monitor.incidents`), judged at each check."""

from __future__ import annotations

import logging

from monitor.alerting.quiet import REFRESH_EVERY, Quiet
from monitor.store import HistoryWrite, LeaseLost, Maintenance, StoreError

logger = logging.getLogger("monitor.maintenance")


class MaintenanceWatch:
    def __init__(self, quiet: Quiet, writer: HistoryWrite) -> None:
        self._quiet = quiet
        self._writer = writer
        self._marked: set[tuple[int, str]] = set()
        """(window id, kind) marked by this monitor or found marked: not tried again."""
        self._looked_at: float | None = None

    def _due_look(self, now: float) -> bool:
        """At most one look per REFRESH_EVERY of the check clock (the windows are read as
        often): it runs after every check, a hundred a second at a thousand targets."""
        if self._looked_at is not None and now < self._looked_at + REFRESH_EVERY:
            return False
        self._looked_at = now
        return True

    async def look(self, now: float) -> list[tuple[int, str]]:
        """Mark what became due since the last look; the marks this monitor made."""
        if not self._due_look(now):
            return []
        await self._quiet.refresh(now)
        made: list[tuple[int, str]] = []
        windows = self._quiet.windows
        # What is known of windows no longer read is dropped (bounded memory).
        live = {window.id for window in windows}
        self._marked = {mark for mark in self._marked if mark[0] in live}
        for window in windows:
            for kind in _due(window, now):
                if (window.id, kind) in self._marked:
                    continue
                if await self._mark(window, kind, now):
                    made.append((window.id, kind))
        return made

    async def _mark(self, window: Maintenance, kind: str, now: float) -> bool:
        try:
            mine = await self._writer.mark_maintenance(window.id, kind, now)
        except LeaseLost:
            raise
        except StoreError as error:
            logger.warning(
                "maintenance window %d not marked %s: %s (tried again at the next look)",
                window.id,
                kind,
                type(error).__name__,
                extra={
                    "event": "maintenance_unmarked",
                    "maintenance": window.id,
                    "kind": kind,
                    "cause": type(error).__name__,
                },
            )
            return False
        self._marked.add((window.id, kind))
        if mine:
            logger.info(
                "maintenance window %d %s: %s",
                window.id,
                kind,
                window.title,
                extra={"event": f"maintenance_{kind}", "maintenance": window.id},
            )
        return mine


def _due(window: Maintenance, now: float) -> list[str]:
    """The marks a window is owed at ``now``, as its row last read says."""
    if window.cancelled_at is not None:
        return []
    if window.active(now) and window.started_at is None:
        return ["started"]
    if now >= window.ends_at and window.completed_at is None:
        return ["completed"]
    return []
