"""A target's record from its replicas' records of one round: the rule (ARCHITECTURE §9).

With ``n`` replicas probed and ``down`` of them unhealthy or unreachable:

- ``n == 0``: ``unreachable``, error "no replicas";
- ``n == 1``: the replica's record, exactly;
- a strict majority down (``2·down > n``): ``unreachable`` if every replica is unreachable, else
  ``unhealthy`` — a quorum of the replicas cannot serve;
- otherwise any replica not healthy (degraded, unknown, or a minority down): ``degraded`` — the
  load balancer still has replicas that serve, but not all of them;
- else ``healthy``.

With the target's ``expected_replicas`` (Kubernetes drops a crash-looping pod from its headless
Service's answer: 2 of 3 pods down would otherwise read as one healthy replica), ``n`` is at least
that many, and each replica short of it counts as unreachable: one found of three expected is
``unhealthy``, error "2/3 replicas missing". Its services are judged over the replicas that
reported them (a missing replica reports nothing).

Each service is judged by the same rule over the replicas that reported it. Its breaker state is
the worst reported (open > half_open > closed), its consecutive failures the most, its response
time the median, and its ``details`` empty: figures of different processes are never mixed (each
replica's own live in its replica row). The target's latency is the median of the replicas that
answered. Its error: when every replica is unreachable, their common error or "unreachable on
n/n replicas"; when some are (the target unhealthy or degraded), "k/n replicas unreachable";
replicas missing come first ("1/3 replicas missing; 1/3 replicas unreachable"). Its
HTTP status is the one most replicas answered with.

A pure function: the daemon calls it, and it is tested on its own.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence

from monitor.store.models import CheckRecord, ReplicaCheck, ServiceSample, Status

NO_REPLICAS = "no replicas"
_DOWN = (Status.UNHEALTHY, Status.UNREACHABLE)
_BREAKER_RANK = {"open": 4, "half_open": 3, "closed": 1}
"""Worse is higher. A word the monitor does not know (``forced_open``) ranks above closed: it
is not known to be fine."""
_UNKNOWN_BREAKER = 2


def aggregate(
    target: str, at: float, replicas: Sequence[ReplicaCheck], expected: int | None = None
) -> CheckRecord:
    """The target's record at ``at`` from ``replicas`` (one check each, this round); with
    ``expected`` (the target's ``expected_replicas``), each replica short of it counts as one
    more unreachable replica."""
    missing = max(0, (expected or 0) - len(replicas))
    n = len(replicas) + missing
    if not replicas:
        error = f"{missing}/{n} replicas missing" if missing else NO_REPLICAS
        return CheckRecord(target, at, Status.UNREACHABLE, None, None, error)
    if n == 1:
        return replicas[0].record
    records = [r.record for r in replicas]
    status = judge([r.status for r in records] + [Status.UNREACHABLE] * missing)
    unreachable = sum(r.status is Status.UNREACHABLE for r in records)
    errors: list[str] = []
    if missing:
        errors.append(f"{missing}/{n} replicas missing")
    if unreachable == n:  # none missing, and not one reachable
        common = {r.error for r in records}
        errors.append(
            (common.pop() if len(common) == 1 else None) or f"unreachable on {n}/{n} replicas"
        )
    elif unreachable:
        errors.append(f"{unreachable}/{n} replicas unreachable")
    answered = [
        r.latency_ms
        for r in records
        if r.status is not Status.UNREACHABLE and r.latency_ms is not None
    ]
    return CheckRecord(
        target=target,
        at=at,
        status=status,
        latency_ms=statistics.median(answered) if answered else None,
        http_status=_most_common([r.http_status for r in records]),
        error="; ".join(errors) or None,
        services=_services(records),
    )


def judge(statuses: Sequence[Status]) -> Status:
    """The rule over one round's statuses (of replicas, or of one service on them)."""
    if not statuses:
        return Status.UNREACHABLE
    if len(statuses) == 1:
        return statuses[0]
    down = sum(s in _DOWN for s in statuses)
    if 2 * down > len(statuses):
        if all(s is Status.UNREACHABLE for s in statuses):
            return Status.UNREACHABLE
        return Status.UNHEALTHY
    if any(s is not Status.HEALTHY for s in statuses):
        return Status.DEGRADED
    return Status.HEALTHY


def _services(records: Sequence[CheckRecord]) -> tuple[ServiceSample, ...]:
    reported: dict[str, list[ServiceSample]] = {}
    for record in records:
        for sample in record.services:
            reported.setdefault(sample.service, []).append(sample)
    return tuple(_service(name, reported[name]) for name in sorted(reported))


def _service(name: str, samples: Sequence[ServiceSample]) -> ServiceSample:
    times = [s.response_ms for s in samples if s.response_ms is not None]
    failures = [s.consecutive_failures for s in samples if s.consecutive_failures is not None]
    return ServiceSample(
        service=name,
        status=judge([s.status for s in samples]),
        response_ms=statistics.median(times) if times else None,
        consecutive_failures=max(failures) if failures else None,
        breaker_state=worst_breaker([s.breaker_state for s in samples]),
        details={},
    )


def worst_breaker(states: Sequence[str | None]) -> str | None:
    """The worst of the breaker states reported (None when no replica reported one)."""
    known = [s for s in states if s is not None]
    if not known:
        return None
    # Ties between unknown words go to the alphabetically first, so the result is stable.
    return min(known, key=lambda s: (-_rank(s), s))


def _rank(state: str) -> int:
    return _BREAKER_RANK.get(state.lower().replace("-", "_"), _UNKNOWN_BREAKER)


def _most_common(codes: Sequence[int | None]) -> int | None:
    """The HTTP status most replicas answered with (the lowest on a tie); None if none did."""
    counted = Counter(c for c in codes if c is not None)
    if not counted:
        return None
    return min(counted, key=lambda c: (-counted[c], c))
