"""What the engine keeps of each replica of a target: its samples over the window, per process,
and since when (and for how many checks) each condition has held on it.

A replica's windows belong to one process (its instance id and start time): counters are only
ever compared with the same process's earlier counters, so a restart, whose counters start again
from 0, opens a fresh window instead of looking like a spike, and two replicas' counters are
never read as one rising and falling."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from monitor.store import ReplicaCheck, ServiceSample, Status

Condition = tuple[str, str]  # rule, service: a key within one replica


@dataclass(frozen=True, slots=True)
class Point:
    """One sample of a service, reduced to what the rules read (read out of its details once,
    when it enters the window, not at every check it stays in it)."""

    at: float
    failing: bool
    refused: float | None
    """The database pool's ``exhausted_total``, if reported."""
    calls: tuple[float, float] | None
    """The breaker's (failed + rejected, all) calls, if reported."""
    breaker_open: bool = False
    """The service's breaker was not closed (open or half-open)."""

    @classmethod
    def of(cls, sample: ServiceSample, at: float) -> Point:
        return cls(
            at,
            sample.status is Status.UNHEALTHY or bool(sample.consecutive_failures),
            counter(sample, "details", "exhausted_total"),
            _breaker_calls(sample),
            sample.breaker_state not in (None, "closed"),
        )


Window = deque[Point]


@dataclass
class Streak:
    """A condition holding on one replica: since when, and for how many of its checks."""

    since: float
    checks: int = 0


@dataclass
class Replica:
    """What the engine keeps of one replica of a target."""

    seen: float
    """When it was last in a check (a replica gone for longer than the window is forgotten)."""
    process: tuple[str, float | None] | None = None
    """The instance (id, started_at) its windows belong to; None until it has said."""
    windows: dict[str, Window] = field(default_factory=dict)
    """Service → that process's samples over the window."""
    since: dict[Condition, Streak] = field(default_factory=dict)
    """Condition → since when (and for how many checks) it has held on this replica."""

    def streak(self, condition: Condition, at: float) -> Streak:
        """The condition's streak as it would stand with this check (not stored)."""
        before = self.since.get(condition)
        return Streak(at, 1) if before is None else Streak(before.since, before.checks + 1)


def follow(known: dict[str, Replica], check: ReplicaCheck, window: float) -> Replica:
    """The replica's state, its windows started afresh when another process answers."""
    at = check.record.at
    state = known.get(check.replica)
    if state is None:
        state = known[check.replica] = Replica(at)
    state.seen = at
    instance = check.instance
    if instance is not None:
        process = (instance.id, instance.started_at)
        if process != state.process:
            # A restart (or the first answer that names its process): never compare the new
            # process's counters with what came before it.
            state.windows.clear()
            state.process = process
    # A service this replica stopped reporting keeps no samples past the window.
    for service in [s for s, w in state.windows.items() if not w or w[-1].at < at - window]:
        del state.windows[service]
    # An unreachable replica says nothing of its process: its windows stay those of the last
    # process that did, and an answer from the same process continues them.
    return state


def forget(known: dict[str, Replica], present: set[str], now: float, window: float) -> None:
    """Replicas not in this round hold nothing (a replica out of the set is not judged); their
    samples are kept for the window, in case they come back, then dropped, so a DNS answer
    churning through addresses does not grow the engine for ever."""
    for replica in [r for r in known if r not in present]:
        state = known[replica]
        state.since.clear()
        if state.seen < now - window:
            del known[replica]


def slide(state: Replica, sample: ServiceSample, now: float, span: float) -> Window:
    """The service's window with this sample in it and those older than ``span`` out."""
    window = state.windows.setdefault(sample.service, deque())
    window.append(Point.of(sample, now))
    while window and window[0].at < now - span:
        window.popleft()
    return window


def counter(sample: ServiceSample, *path: str) -> float | None:
    value: object = sample.details
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def rise(values: Iterable[float | None]) -> float:
    """How much a counter rose over a window. Only a rise counts: the backend's counter includes
    refusals from before we started watching; a fall is a reset, not a negative count."""
    known = [v for v in values if v is not None]
    return sum(max(0.0, later - earlier) for earlier, later in pairwise(known))


def refusing(window: Window) -> bool:
    """Whether the pool's refusal counter rose at the latest sample (against the sample before
    it that reported one): the pool still turns callers away now."""
    known = [point.refused for point in window if point.refused is not None]
    if len(known) < 2 or window[-1].refused is None:
        return False
    return known[-1] > known[-2]


def _breaker_calls(sample: ServiceSample) -> tuple[float, float] | None:
    bad = [counter(sample, "circuit_breaker", k) for k in ("failed_calls", "rejected_calls")]
    good = counter(sample, "circuit_breaker", "successful_calls")
    if good is None or None in bad:
        return None
    failures = sum(b for b in bad if b is not None)
    return failures, failures + good


MIN_CALLS = 5
"""Fewer S3 calls than this over the window say nothing of a rate."""


def breaker_failure_rate(window: Window) -> float | None:
    """Failed and refused calls over all calls in the window (None: too few calls)."""
    known = [point.calls for point in window if point.calls is not None]
    failures = calls = 0.0
    for (failed_before, calls_before), (failed_after, calls_after) in pairwise(known):
        if failed_after < failed_before or calls_after < calls_before:
            continue  # the counters were reset: this step says nothing
        failures += failed_after - failed_before
        calls += calls_after - calls_before
    if calls < MIN_CALLS:
        return None
    return failures / calls


def calls_failing(window: Window) -> bool:
    """Whether the service's calls still fail at its latest sample (the S3 rate rule holds only
    then: a window full of old failures must not keep an alert up after recovery): the latest
    step of the breaker's counters has failures, or the breaker is not closed. A latest sample
    without counters is judged by its health check."""
    latest = window[-1]
    if latest.breaker_open:
        return True
    if latest.calls is None:
        return latest.failing
    before = next((p.calls for p in reversed(list(window)[:-1]) if p.calls is not None), None)
    if before is None:
        return latest.failing
    failed_before, calls_before = before
    failed_after, calls_after = latest.calls
    if failed_after < failed_before or calls_after < calls_before:
        return False  # a reset: the new process has not failed yet
    return failed_after > failed_before
