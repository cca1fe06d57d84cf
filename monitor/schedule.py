"""When each of the daemon's jobs (a target's checks, a ``[[checks]]`` entry's runs) first runs,
and when its retention first runs (:func:`first_retention`).

The first runs are staggered: jobs that share an interval start at most :data:`PHASE_STEP`
apart and spread evenly over the interval when there are many. Started at one instant, a
thousand checks queue in the HTTP client's connection pool, time out there and are stored as
failures of a healthy fleet; and being in phase once, they would stay in phase for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

RETENTION_FIRST_AFTER = timedelta(minutes=5)
"""The first retention run is at the first hour boundary at least this long after start: a
monitor that just took over (or restarted) checks first, and however often leadership moves,
the long retention runs once an hour, not once per new leader."""
PHASE_STEP = 0.05
"""Seconds between two jobs' first checks, at most (a few targets all start at once)."""


class Scheduled(Protocol):
    """A check job's subject: a target, or a ``[[checks]]`` entry."""

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float: ...


def first_runs(jobs: Sequence[Scheduled], now: datetime) -> dict[str, datetime]:
    """When each target (or check) is first checked: from ``now``, those that share an interval
    ``min(interval / count, PHASE_STEP)`` apart, in the order given (config order: the targets,
    then the checks)."""
    by_interval: dict[float, list[Scheduled]] = {}
    for job in jobs:
        by_interval.setdefault(job.interval, []).append(job)
    runs: dict[str, datetime] = {}
    for interval, group in by_interval.items():
        step = min(interval / len(group), PHASE_STEP)
        for n, job in enumerate(group):
            runs[job.name] = now + timedelta(seconds=n * step)
    return runs


def first_retention(now: datetime) -> datetime:
    """The first retention run: the first whole hour at least RETENTION_FIRST_AFTER after
    ``now`` (never at start: a new leader's first checks come first)."""
    earliest = now + RETENTION_FIRST_AFTER
    hour = earliest.replace(minute=0, second=0, microsecond=0)
    return hour if hour == earliest else hour + timedelta(hours=1)
