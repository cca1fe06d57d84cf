"""Silences, acknowledgements and maintenance windows, as the engine last read them from the store.

All three are written by people (``questcity alert ack|silence``, ``questcity maintenance
schedule|cancel``, the TUI) into the store, not into this process: the engine reads them again
at most every :data:`REFRESH_EVERY` seconds of the check clock, so an ack stops reminders and a
silence or a window holds notices within a few seconds, at three small reads per refresh
whatever the number of targets. A silence's or a window's end needs no read: it is in the row,
and judged on the check clock (a cancelled window drops out of the next read).

A window holds a component's notices as a silence does (issue #15), but never the monitor's own
alerts (``@monitor…``): planned work on QuestCity must not hide that the monitor went blind."""

from __future__ import annotations

import logging

from monitor.alert_actions import MONITOR_COMPONENT
from monitor.notices import AlertNotice
from monitor.store import (
    HistoryRead,
    HistoryWrite,
    Maintenance,
    MaintenanceEvent,
    Silence,
    StoreError,
)
from shared.resilience.sanitize import one_line

logger = logging.getLogger("monitor.alerts")

REFRESH_EVERY = 5.0
"""Seconds of the check clock between two reads of the silences, acks and windows."""
ACTIVE_ALERTS = 1000
"""The firing alerts read for their acks (as many as the engine resumes)."""
WINDOWS_LOOKBACK = 3600.0
"""Windows that ended up to this long ago are read too: one that ended between two reads (or
while no monitor led) is still seen ending — marked completed, its held incidents opened. One
marked started and not completed is read however long ago it ended (``unfinished``): a leader
back after hours still tells its subscribers it completed."""
WINDOWS_READ = 500
"""Windows read at most per refresh (upcoming, active, just ended, and owed their completion)."""

HELD_CHARS = 500
"""A ``held_alert``/``held_incident`` event's text is cut to this."""

Hold = Silence | Maintenance
"""What holds a component's notices: a silence, or a maintenance window."""


class Quiet:
    def __init__(self, reader: HistoryRead) -> None:
        self._reader = reader
        self._read_at: float | None = None
        self._silences: list[Silence] = []
        self._acked: set[int] = set()
        self._windows: list[Maintenance] = []

    async def refresh(self, now: float) -> None:
        """Read the silences in force, the acked alerts and the windows again, if the last read
        is at least :data:`REFRESH_EVERY` old. A store that fails keeps the last ones (logged):
        a silence or a window must not lapse because a read did."""
        if self._read_at is not None and now < self._read_at + REFRESH_EVERY:
            return
        self._read_at = now  # before the reads: concurrent checks do not read again
        try:
            silences = await self._reader.silences(at=now)
            active = await self._reader.alerts(active_only=True, limit=ACTIVE_ALERTS)
        except StoreError as error:
            logger.warning(
                "could not read the silences and acks: %s",
                type(error).__name__,
                extra={"event": "alert_quiet_unread", "cause": type(error).__name__},
            )
        else:
            self._silences = silences
            self._acked = {alert.id for alert in active if alert.acked_at is not None}
        try:
            windows = await self._reader.maintenances(
                since=now - WINDOWS_LOOKBACK, unfinished=True, limit=WINDOWS_READ
            )
        except StoreError as error:
            logger.warning(
                "could not read the maintenance windows: %s",
                type(error).__name__,
                extra={"event": "maintenance_unread", "cause": type(error).__name__},
            )
        else:
            self._windows = windows

    @property
    def windows(self) -> list[Maintenance]:
        """The windows last read (not cancelled): upcoming, active, those that ended lately, and
        those started and never marked completed."""
        return list(self._windows)

    async def recorded(self, maintenance_id: int, kind: str, marker: str) -> bool:
        """Whether the window's stored events already have a ``kind`` event whose text holds
        ``marker`` — written by this monitor or by a leader before it, which this one's memory
        does not know. One read of the window, made only before writing such an event (once per
        alert or cause and window in a process). A failed read: False (the event is written,
        twice perhaps, rather than lost)."""
        try:
            window = await self._reader.maintenance(maintenance_id)
        except StoreError as error:
            logger.warning(
                "could not read maintenance window %d's events: %s",
                maintenance_id,
                type(error).__name__,
                extra={"event": "maintenance_unread", "cause": type(error).__name__},
            )
            return False
        return window is not None and any(
            e.kind == kind and marker in e.text for e in window.events
        )

    def silence(self, target: str, service: str, at: float) -> Silence | None:
        """The silence covering this component at ``at``, if any (the one that ends last)."""
        covering = [s for s in self._silences if s.covers(target, service, at)]
        return max(covering, key=lambda s: s.ends_at) if covering else None

    def window(self, target: str, service: str, at: float) -> Maintenance | None:
        """The active window covering this component at ``at``, if any (the one that ends
        last); never one for the monitor's own alerts."""
        if target == MONITOR_COMPONENT or target.startswith(MONITOR_COMPONENT + "/"):
            return None
        covering = [w for w in self._windows if w.covers(target, service, at)]
        return max(covering, key=lambda w: w.ends_at) if covering else None

    def hold(self, target: str, service: str, at: float) -> Hold | None:
        """What holds this component's notices at ``at``: a silence first, else a window."""
        return self.silence(target, service, at) or self.window(target, service, at)

    def acked(self, alert_id: int) -> bool:
        return alert_id in self._acked

    def ack(self, alert_id: int) -> None:
        """Known acked without a read (an alert resumed from the store with its ack)."""
        self._acked.add(alert_id)


def log_held(notice: AlertNotice, hold: Hold) -> None:
    """A held notice, in the log (the outbox marks it handled)."""
    if isinstance(hold, Maintenance):
        logger.info(
            "alert %s held (maintenance window %d): %s",
            notice.state,
            hold.id,
            notice.summary,
            extra={
                "event": "alert_held",
                "rule": notice.rule,
                "component": notice.component,
                "alert_id": notice.alert_id,
                "maintenance": hold.id,
                "until": hold.ends_at,
            },
        )
        return
    logger.info(
        "alert %s silenced (silence %d by %s): %s",
        notice.state,
        hold.id,
        hold.created_by,
        notice.summary,
        extra={
            "event": "alert_silenced",
            "rule": notice.rule,
            "component": notice.component,
            "alert_id": notice.alert_id,
            "silence": hold.id,
            "until": hold.ends_at,
        },
    )


async def record_held(
    writer: HistoryWrite, maintenance_id: int, kind: str, text: str, at: float
) -> bool:
    """Write a window's event (``held_alert``, ``held_incident``, ``incident_opened``). A store
    that refuses it is logged with the whole text — the record is not lost silently — and the
    caller goes on (the alerts and incidents matter more than the window's account of them).
    Whether it was written."""
    text = one_line(text, HELD_CHARS)
    try:
        await writer.add_maintenance_event(
            maintenance_id, MaintenanceEvent(at=at, kind=kind, text=text)
        )
    except StoreError as error:
        logger.warning(
            "maintenance window %d: %s not recorded (%s): %s",
            maintenance_id,
            kind,
            type(error).__name__,
            text,
            extra={
                "event": "maintenance_event_unwritten",
                "maintenance": maintenance_id,
                "kind": kind,
                "cause": type(error).__name__,
            },
        )
        return False
    return True
