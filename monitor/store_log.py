"""The store refusing the daemon's checks (a target's or a ``[[checks]]`` entry's), in the log:
one traceback when an outage starts, a line at most every :data:`STORE_WARN_EVERY` seconds
while it lasts, and one when the store takes checks again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

logger = logging.getLogger("monitor")

STORE_WARN_EVERY = 60.0
"""Seconds between two log lines of a store that keeps refusing checks (after the first's
traceback)."""


class StoreLog:
    """The store refusing checks (a target's or a check's), in the log."""

    def __init__(self) -> None:
        self._failing_since: float | None = None
        """When the store began refusing checks (None: it takes them): one traceback per outage."""
        self._warned_at: float | None = None

    def failed(self, name: str, error: Exception, at: float) -> None:
        """A check of ``name`` not recorded: the traceback once when the failures start, then a
        line at most once a minute while they go on (monitor_store_unwritable pages meanwhile) —
        not a traceback per check, which at a hundred checks a second buries everything else."""
        if self._failing_since is None:
            self._failing_since = self._warned_at = at
            logger.exception(
                "could not record the check of %s",
                name,
                extra={"event": "store_error", "target": name},
            )
            return
        assert self._warned_at is not None
        if at - self._warned_at < STORE_WARN_EVERY:
            return
        self._warned_at = at
        logger.warning(
            "the store still refuses checks (since %s): %s; last of %s",
            datetime.fromtimestamp(self._failing_since, UTC).strftime("%H:%M:%S UTC"),
            type(error).__name__,
            name,
            extra={"event": "store_error", "target": name, "cause": type(error).__name__},
        )

    def written(self, name: str, at: float) -> None:
        """A check recorded: if the store had been refusing them, say it takes them again."""
        if self._failing_since is None:
            return
        logger.warning(
            "the store takes checks again (after %.0f s of failures)",
            max(0.0, at - self._failing_since),
            extra={"event": "store_recovered", "target": name},
        )
        self._failing_since = self._warned_at = None
