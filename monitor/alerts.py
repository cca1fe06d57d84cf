"""The seed's alert rules, evaluated on every check, on the check's own timestamps (so tests run
them on a fake clock): each has a condition, how long it must hold before firing, and resolves as
soon as the condition stops holding.

- ``breaker_open``: a service's breaker not closed for ``breaker_open_for`` (5 min);
- ``health_check_failure_rate``: over ``window``, more than ``check_failure_rate`` (50 %) of a
  service's samples show a failing health check;
- ``db_pool_exhausted``: the database pool refused callers within ``window``;
- ``s3_failure_rate``: over ``window``, more than ``s3_failure_rate`` (30 %) of S3 calls failed or
  were refused (from the ``s3`` breaker's counters);
- ``target_unreachable``: the health API did not answer for ``unreachable_for``.

A target may run as several replicas (ARCHITECTURE §11), each its own process with its own
breakers and counters. Every condition is therefore judged on each replica's own samples: the
samples of a service sit in a window of one replica *and one process* (its instance id and start
time), so counters are only ever compared with the same process's earlier counters — a restart,
whose counters start again from 0, opens a fresh window instead of looking like a spike, and two
replicas' counters are never read as one rising and falling. How long a condition has held is
tracked per replica. The alert itself stays one per (rule, target, service): it fires once the
condition has held for the rule's time on at least one replica, resolves when it holds on none,
and its summary says on how many replicas and which. A record observed without replicas is the
target's one replica, as before the fleet.

An alert's transition is written first and announced after: a monitor that lost its leadership
(``LeaseLost`` from the fenced write) neither pages anyone nor believes an alert fires that the
store never took. The store is also the notices' outbox: once a notice is handled (every sink
delivered it or gave up), the engine marks it in the alert's row with a fenced write. A monitor
that resumes — the next leader, or this one restarted — sends every notice still unmarked,
firing or resolved, so a leader killed (or its node lost) before its webhook went out does not
lose the page: notices are delivered at least once, a duplicate only when a leader dies between
delivery and mark, and each carries an idempotency key for the receiver to drop it
(:mod:`monitor.notifiers`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from monitor.config import AlertRules
from monitor.notifiers import AlertNotice, Dispatcher
from monitor.store import (
    TARGET_COMPONENT,
    AlertState,
    CheckRecord,
    HistoryRead,
    HistoryWrite,
    LeaseLost,
    ReplicaCheck,
    ServiceSample,
    Status,
    StoreError,
)

logger = logging.getLogger("monitor.alerts")

Key = tuple[str, str, str]  # rule, target, service
Condition = tuple[str, str]  # rule, service: a key within one replica
Window = deque["_Point"]

NAMED_REPLICAS = 3
"""A summary names at most this many replicas, then says how many more."""
LABEL_CHARS = 60
"""Instance ids and replica keys come from outside: cut to this in a summary."""


@dataclass
class _Firing:
    alert_id: int
    summary: str


@dataclass(frozen=True, slots=True)
class _Finding:
    """A condition holding on one replica's samples."""

    summary: str
    hold_for: float
    severity: float = 0.0
    """Which replica's figure a summary shows when several hold: the worst one's."""


@dataclass(frozen=True, slots=True)
class _Held:
    replica: str
    label: str
    finding: _Finding


@dataclass(frozen=True, slots=True)
class _Point:
    """One sample of a service, reduced to what the rules read (read out of its details once,
    when it enters the window, not at every check it stays in it)."""

    at: float
    failing: bool
    refused: float | None
    """The database pool's ``exhausted_total``, if reported."""
    calls: tuple[float, float] | None
    """The breaker's (failed + rejected, all) calls, if reported."""

    @classmethod
    def of(cls, sample: ServiceSample, at: float) -> _Point:
        return cls(
            at,
            sample.status is Status.UNHEALTHY or bool(sample.consecutive_failures),
            _counter(sample, "details", "exhausted_total"),
            _breaker_calls(sample),
        )


@dataclass
class _Replica:
    """What the engine keeps of one replica of a target."""

    seen: float
    """When it was last in a check (a replica gone for longer than the window is forgotten)."""
    process: tuple[str, float | None] | None = None
    """The instance (id, started_at) its windows belong to; None until it has said."""
    windows: dict[str, Window] = field(default_factory=dict)
    """Service → that process's samples over the window."""
    since: dict[Condition, float] = field(default_factory=dict)
    """Condition → since when it has held on this replica."""


class AlertEngine:
    def __init__(self, rules: AlertRules, writer: HistoryWrite, dispatcher: Dispatcher) -> None:
        self._rules = rules
        self._writer = writer
        self._dispatcher = dispatcher
        self._firing: dict[Key, _Firing] = {}
        self._replicas: dict[str, dict[str, _Replica]] = {}

    async def resume(self, reader: HistoryRead) -> None:
        """Take up the firing alerts from the store, and send the notices it still owes (their
        sender died before marking them): each once more, marked when handled."""
        for alert in await reader.alerts(active_only=True, limit=1000):
            self._firing[(alert.rule, alert.target, alert.service)] = _Firing(
                alert.id, alert.summary
            )
        for alert in await reader.unnotified_alerts():
            at = alert.resolved_at if alert.resolved_at is not None else alert.started_at
            self._announce(
                AlertNotice(
                    alert.rule,
                    alert.target,
                    alert.service,
                    alert.state.value,
                    alert.summary,
                    at,
                    alert.id,
                )
            )

    def _announce(self, notice: AlertNotice) -> None:
        self._dispatcher.dispatch(notice, self._mark)

    async def _mark(self, notice: AlertNotice) -> None:
        """Mark a handled notice in the outbox. Fenced: a deposed leader cannot mark, and its
        successor sends the notice again (at least once, never lost)."""
        if notice.alert_id is None:
            return
        try:
            await self._writer.mark_notified(notice.alert_id, AlertState(notice.state))
        except LeaseLost:
            logger.info(
                "alert notice sent but not marked: this monitor no longer leads",
                extra={"event": "notify_unmarked", "rule": notice.rule, "cause": "LeaseLost"},
            )
        except StoreError as error:
            logger.warning(
                "alert notice sent but not marked: %s",
                type(error).__name__,
                extra={
                    "event": "notify_unmarked",
                    "rule": notice.rule,
                    "cause": type(error).__name__,
                },
            )

    async def report(
        self, rule: str, target: str, service: str, summary: str | None, at: float
    ) -> None:
        """A condition judged outside the engine (the monitor's self-alerts): ``summary`` while
        it holds (fires, or re-writes the firing alert's text), None once it is clear (resolves
        after ``hold_down`` clear). Same lifecycle as the engine's own rules: silences, acks,
        reminders, the outbox. (Being built for #14: the signature is fixed.)"""
        raise NotImplementedError

    def announce_unstored(
        self, rule: str, target: str, service: str, state: str, summary: str, at: float
    ) -> None:
        """A notice of no stored alert (``alert_id`` None), sent straight to the notifiers: for
        ``monitor_store_unwritable``, which cannot be stored while the store fails. (Being built
        for #14: the signature is fixed.)"""
        raise NotImplementedError

    @property
    def firing(self) -> Mapping[Key, str]:
        return {key: firing.summary for key, firing in self._firing.items()}

    def tracked(self, target: str) -> list[str]:
        """The replicas of ``target`` the engine keeps samples or holds for (sorted)."""
        return sorted(self._replicas.get(target, {}))

    async def observe(self, record: CheckRecord, replicas: Sequence[ReplicaCheck] = ()) -> None:
        """Judge one round of checks of ``record.target``: ``record`` is the target's aggregate,
        ``replicas`` what each replica answered (empty: ``record`` is the target's one replica).

        A store error (``LeaseLost`` among them) propagates from the transition it stopped: that
        transition is neither announced nor taken as done, so a later check tries it again."""
        checks = tuple(replicas) or (ReplicaCheck("", record),)
        target = record.target
        known = self._replicas.setdefault(target, {})
        held: dict[Key, list[_Held]] = {}
        holding: set[Key] = set()
        for check in checks:
            state = _follow(known, check, self._rules.window)
            at = check.record.at
            findings = self._conditions(target, check.record, state)
            for condition in [c for c in state.since if c not in findings]:
                del state.since[condition]
            for (rule, service), finding in findings.items():
                key = (rule, target, service)
                holding.add(key)
                since = state.since.setdefault((rule, service), at)
                if at - since >= finding.hold_for:
                    held.setdefault(key, []).append(_Held(check.replica, _label(check), finding))
        self._forget(known, {check.replica for check in checks}, record.at)

        now = record.at
        for key, where in held.items():
            if key not in self._firing:
                summary = _summary(where, len(checks))
                alert_id = await self._writer.fire_alert(*key, summary, now)
                # Firing once the store has it, and only then announced (see the docstring).
                self._firing[key] = _Firing(alert_id, summary)
                self._announce(AlertNotice(*key, "firing", summary, now, alert_id))
        for key in [k for k in self._firing if k[1] == target and k not in holding]:
            firing = self._firing[key]
            await self._writer.resolve_alert(firing.alert_id, now)
            del self._firing[key]
            self._announce(AlertNotice(*key, "resolved", firing.summary, now, firing.alert_id))

    def _forget(self, known: dict[str, _Replica], present: set[str], now: float) -> None:
        """Replicas not in this round hold nothing (a replica out of the set is not judged);
        their samples are kept for the window, in case they come back, then dropped, so a DNS
        answer churning through addresses does not grow the engine for ever."""
        for replica in [r for r in known if r not in present]:
            state = known[replica]
            state.since.clear()
            if state.seen < now - self._rules.window:
                del known[replica]

    def _conditions(
        self, target: str, record: CheckRecord, state: _Replica
    ) -> dict[Condition, _Finding]:
        rules = self._rules
        findings: dict[Condition, _Finding] = {}
        if record.status is Status.UNREACHABLE:
            findings[("target_unreachable", TARGET_COMPONENT)] = _Finding(
                f"{target}: health API not answering ({record.error})", rules.unreachable_for
            )
        for sample in record.services:
            window = _window(state, sample, record.at, rules.window)
            service = sample.service
            if sample.breaker_state not in (None, "closed"):
                findings[("breaker_open", service)] = _Finding(
                    f"{target}/{service}: circuit breaker not closed for "
                    f"{rules.breaker_open_for / 60:g} min",
                    rules.breaker_open_for,
                )
            failed = sum(1 for point in window if point.failing)
            if len(window) >= 3 and failed / len(window) > rules.check_failure_rate:
                findings[("health_check_failure_rate", service)] = _Finding(
                    f"{target}/{service}: {failed} of the last {len(window)} health checks failed",
                    0.0,
                    failed / len(window),
                )
            refused = _rise(point.refused for point in window)
            if refused:
                findings[("db_pool_exhausted", service)] = _Finding(
                    f"{target}/{service}: connection pool exhausted",
                    rules.pool_exhausted_for,
                    refused,
                )
            if service == "s3":
                rate = _breaker_failure_rate(window)
                if rate is not None and rate > rules.s3_failure_rate:
                    findings[("s3_failure_rate", service)] = _Finding(
                        f"{target}/s3: {rate:.0%} of S3 operations failing", 0.0, rate
                    )
        return findings


def _follow(known: dict[str, _Replica], check: ReplicaCheck, window: float) -> _Replica:
    """The replica's state, its windows started afresh when another process answers."""
    at = check.record.at
    state = known.get(check.replica)
    if state is None:
        state = known[check.replica] = _Replica(at)
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


def _window(state: _Replica, sample: ServiceSample, now: float, span: float) -> Window:
    window = state.windows.setdefault(sample.service, deque())
    window.append(_Point.of(sample, now))
    while window and window[0].at < now - span:
        window.popleft()
    return window


def _label(check: ReplicaCheck) -> str:
    name = check.instance.id if check.instance is not None and check.instance.id else check.replica
    return "".join(c for c in name[: LABEL_CHARS * 4] if c.isprintable())[:LABEL_CHARS]


def _summary(where: list[_Held], replicas: int) -> str:
    """The worst replica's finding; with several replicas, on how many and which."""
    worst = max(where, key=lambda h: h.finding.severity)
    if replicas == 1:
        return worst.finding.summary
    labels = [h.label for h in sorted(where, key=lambda h: h.replica)]
    named = ", ".join(labels[:NAMED_REPLICAS])
    if len(labels) > NAMED_REPLICAS:
        named += f" +{len(labels) - NAMED_REPLICAS} more"
    return f"{worst.finding.summary} on {len(where)}/{replicas} replicas ({named})"


def _counter(sample: ServiceSample, *path: str) -> float | None:
    value: object = sample.details
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def _rise(values: Iterable[float | None]) -> float:
    """How much a counter rose over a window. Only a rise counts: the backend's counter includes
    refusals from before we started watching; a fall is a reset, not a negative count."""
    known = [v for v in values if v is not None]
    return sum(max(0.0, later - earlier) for earlier, later in pairwise(known))


def _breaker_calls(sample: ServiceSample) -> tuple[float, float] | None:
    bad = [_counter(sample, "circuit_breaker", k) for k in ("failed_calls", "rejected_calls")]
    good = _counter(sample, "circuit_breaker", "successful_calls")
    if good is None or None in bad:
        return None
    failures = sum(b for b in bad if b is not None)
    return failures, failures + good


def _breaker_failure_rate(window: Window) -> float | None:
    known = [point.calls for point in window if point.calls is not None]
    failures = calls = 0.0
    for (failed_before, calls_before), (failed_after, calls_after) in pairwise(known):
        if failed_after < failed_before or calls_after < calls_before:
            continue  # the counters were reset: this step says nothing
        failures += failed_after - failed_before
        calls += calls_after - calls_before
    if calls < 5:
        return None
    return failures / calls
