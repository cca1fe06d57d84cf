"""Silences and acknowledgements, as the engine last read them from the store.

Both are written by people (``questcity alert ack|silence``, the TUI) into the store, not into
this process: the engine reads them again at most every :data:`REFRESH_EVERY` seconds of the
check clock, so an ack stops reminders and a silence holds notices within a few seconds, at two
small reads per refresh whatever the number of targets. A silence's end needs no read: it is in
the row, and judged on the check clock."""

from __future__ import annotations

import logging

from monitor.store import HistoryRead, Silence, StoreError

logger = logging.getLogger("monitor.alerts")

REFRESH_EVERY = 5.0
"""Seconds of the check clock between two reads of the silences and acks."""
ACTIVE_ALERTS = 1000
"""The firing alerts read for their acks (as many as the engine resumes)."""


class Quiet:
    def __init__(self, reader: HistoryRead) -> None:
        self._reader = reader
        self._read_at: float | None = None
        self._silences: list[Silence] = []
        self._acked: set[int] = set()

    async def refresh(self, now: float) -> None:
        """Read the silences in force and the acked alerts again, if the last read is at least
        :data:`REFRESH_EVERY` old. A store that fails keeps the last ones (logged): a silence
        must not lapse because a read did."""
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
            return
        self._silences = silences
        self._acked = {alert.id for alert in active if alert.acked_at is not None}

    def silence(self, target: str, service: str, at: float) -> Silence | None:
        """The silence covering this component at ``at``, if any (the one that ends last)."""
        covering = [s for s in self._silences if s.covers(target, service, at)]
        return max(covering, key=lambda s: s.ends_at) if covering else None

    def acked(self, alert_id: int) -> bool:
        return alert_id in self._acked

    def ack(self, alert_id: int) -> None:
        """Known acked without a read (an alert resumed from the store with its ack)."""
        self._acked.add(alert_id)
