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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from monitor.config import AlertRules
from monitor.notifiers import AlertNotice, Dispatcher
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    HistoryRead,
    HistoryWrite,
    ServiceSample,
    Status,
)

Key = tuple[str, str, str]  # rule, target, service


@dataclass
class _Firing:
    alert_id: int
    summary: str


class AlertEngine:
    def __init__(self, rules: AlertRules, writer: HistoryWrite, dispatcher: Dispatcher) -> None:
        self._rules = rules
        self._writer = writer
        self._dispatcher = dispatcher
        self._pending: dict[Key, float] = {}
        self._firing: dict[Key, _Firing] = {}
        self._samples: dict[tuple[str, str], deque[tuple[float, ServiceSample]]] = {}

    async def resume(self, reader: HistoryRead) -> None:
        for alert in await reader.alerts(active_only=True, limit=1000):
            self._firing[(alert.rule, alert.target, alert.service)] = _Firing(
                alert.id, alert.summary
            )

    @property
    def firing(self) -> Mapping[Key, str]:
        return {key: firing.summary for key, firing in self._firing.items()}

    async def observe(self, record: CheckRecord) -> None:
        now = record.at
        holding = self._conditions(record)
        for key, (summary, hold_for) in holding.items():
            since = self._pending.setdefault(key, now)
            if key not in self._firing and now - since >= hold_for:
                alert_id = await self._writer.fire_alert(*key, summary, now)
                self._firing[key] = _Firing(alert_id, summary)
                self._dispatcher.dispatch(AlertNotice(*key, "firing", summary, now))
        for key in [k for k in self._pending if k[1] == record.target and k not in holding]:
            del self._pending[key]
        for key in [k for k in self._firing if k[1] == record.target and k not in holding]:
            firing = self._firing.pop(key)
            await self._writer.resolve_alert(firing.alert_id, now)
            self._dispatcher.dispatch(AlertNotice(*key, "resolved", firing.summary, now))

    def _conditions(self, record: CheckRecord) -> dict[Key, tuple[str, float]]:
        rules = self._rules
        target = record.target
        holding: dict[Key, tuple[str, float]] = {}
        if record.status is Status.UNREACHABLE:
            holding[("target_unreachable", target, TARGET_COMPONENT)] = (
                f"{target}: health API not answering ({record.error})",
                rules.unreachable_for,
            )
        for sample in record.services:
            window = self._window(target, sample, record.at)
            service = sample.service
            if sample.breaker_state not in (None, "closed"):
                holding[("breaker_open", target, service)] = (
                    f"{target}/{service}: circuit breaker not closed for "
                    f"{rules.breaker_open_for / 60:g} min",
                    rules.breaker_open_for,
                )
            failed = sum(1 for _, s in window if _check_failing(s))
            if len(window) >= 3 and failed / len(window) > rules.check_failure_rate:
                holding[("health_check_failure_rate", target, service)] = (
                    f"{target}/{service}: {failed} of the last {len(window)} health checks failed",
                    0.0,
                )
            if _pool_refused(window):
                holding[("db_pool_exhausted", target, service)] = (
                    f"{target}/{service}: connection pool exhausted",
                    rules.pool_exhausted_for,
                )
            if service == "s3":
                rate = _breaker_failure_rate(window)
                if rate is not None and rate > rules.s3_failure_rate:
                    holding[("s3_failure_rate", target, service)] = (
                        f"{target}/s3: {rate:.0%} of S3 operations failing",
                        0.0,
                    )
        return holding

    def _window(
        self, target: str, sample: ServiceSample, now: float
    ) -> deque[tuple[float, ServiceSample]]:
        window = self._samples.setdefault((target, sample.service), deque())
        window.append((now, sample))
        while window and window[0][0] < now - self._rules.window:
            window.popleft()
        return window


def _check_failing(sample: ServiceSample) -> bool:
    return sample.status is Status.UNHEALTHY or bool(sample.consecutive_failures)


def _counter(sample: ServiceSample, *path: str) -> float | None:
    value: object = sample.details
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def _pool_refused(window: deque[tuple[float, ServiceSample]]) -> bool:
    first = _counter(window[0][1], "details", "exhausted_total")
    last = _counter(window[-1][1], "details", "exhausted_total")
    # Only a rise counts: the backend's counter includes refusals from before we started watching.
    return first is not None and last is not None and last > first


def _breaker_failure_rate(window: deque[tuple[float, ServiceSample]]) -> float | None:
    def totals(sample: ServiceSample) -> tuple[float, float] | None:
        bad = [_counter(sample, "circuit_breaker", k) for k in ("failed_calls", "rejected_calls")]
        good = _counter(sample, "circuit_breaker", "successful_calls")
        if good is None or None in bad:
            return None
        failures = sum(b for b in bad if b is not None)
        return failures, failures + good

    first, last = totals(window[0][1]), totals(window[-1][1])
    if first is None or last is None:
        return None
    calls = last[1] - first[1]
    if calls < 5:
        return None
    return (last[0] - first[0]) / calls
