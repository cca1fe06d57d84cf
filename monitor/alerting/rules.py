"""The alert rules, judged on one replica's samples (or one run of a ``[[checks]]`` entry), and
the words of their summaries.

The health API's rules (:func:`judge`) read a target's services; a check has none, and is judged
by its own two (:func:`judge_check`) — never the other way round. Every summary names the
component by its display name (``QuestCity API / Database``; a component not in the config by
its key) and says the current figure, so a firing alert's text follows the outage as it
changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.alerting.samples import (
    MIN_CALLS,
    Condition,
    Replica,
    Streak,
    Window,
    breaker_failure_rate,
    calls_failing,
    refusing,
    rise,
    slide,
)
from monitor.config import AlertRules, MonitorConfig
from monitor.self_alerts import MONITOR
from monitor.store import TARGET_COMPONENT, CheckRecord, ReplicaCheck, Status, component_key
from shared.resilience.sanitize import one_line

CHECK_FAILING = "check_failing"
CERTIFICATE_EXPIRING = "certificate_expiring"
RULES = frozenset(
    {
        "breaker_open",
        "health_check_failure_rate",
        "db_pool_exhausted",
        "s3_failure_rate",
        "service_down",
        "target_unreachable",
        CHECK_FAILING,
        CERTIFICATE_EXPIRING,
    }
)
"""The engine's own rules; any other rule is judged outside it (:meth:`AlertEngine.report`)."""
WARNINGS = frozenset({CERTIFICATE_EXPIRING})
"""Rules that warn of trouble ahead: one firing holds back no other rule's page on its component
and never carries another rule's outage on in its own name — a certificate renewal weeks away must
not hide the front door going down, nor keep paging as "expiring" once the check is healthy
again."""
FAILED_RUN = frozenset({Status.UNHEALTHY, Status.UNREACHABLE, Status.UNKNOWN})
"""A check's run that did not pass: reached and wrong, not reached, or not run at all."""

NAMED_REPLICAS = 3
"""A summary names at most this many replicas, then says how many more."""
LABEL_CHARS = 60
"""Instance ids and replica keys come from outside: cut to this in a summary."""
DAY = 86_400.0
REASON_CHARS = 80
"""A backend's error text comes from outside: cut to this in a summary."""
CHECK_ERROR_CHARS = 200
"""A check's error (already its own words, the failed conditions) is cut to this in a summary."""
TLS = "tls"


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition holding on one replica's samples."""

    summary: str
    hold_for: float
    """Seconds it must hold before the alert fires…"""
    hold_checks: int | None = None
    """…or this many checks in a row, whichever comes first (None: time only)."""
    severity: float = 0.0
    """Which replica's figure a summary shows when several hold: the worst one's."""

    def due(self, streak: Streak, at: float) -> bool:
        if self.hold_checks is not None and streak.checks >= self.hold_checks:
            return True
        return at - streak.since >= self.hold_for


@dataclass(frozen=True, slots=True)
class Held:
    replica: str
    label: str
    finding: Finding


class Names:
    """Display names from the config: a target's or a check's title, ``Title / Service`` for a
    service of a target; a component the config does not know goes by its key."""

    def __init__(self, config: MonitorConfig) -> None:
        self._targets = {target.name: target for target in config.targets}
        self._checks = {check.name: check.title for check in config.checks}

    def __call__(self, target: str, service: str) -> str:
        if target == MONITOR and service:
            # The monitor's own alert about one target (monitor.self_alerts): its own key.
            return f"Monitor of {self(service, '')}"
        if not service and target in self._checks:
            return self._checks[target]
        known = self._targets.get(target)
        if known is None:
            return component_key(target, service)
        return f"{known.title} / {known.service_title(service)}" if service else known.title


def judge(
    rules: AlertRules,
    open_after: int,
    name: Names,
    record: CheckRecord,
    state: Replica,
    *,
    target_down: bool = True,
) -> dict[Condition, Finding]:
    """The conditions holding on one replica at this check, each with its current figures.

    ``target_down``: the whole target is unreachable at this check (every replica; a target
    without replicas is its one). Only then does an unreachable replica page within
    ``open_after`` checks; one replica of several away (a restart, a rolling deploy) pages only
    after ``unreachable_for`` — the others serve meanwhile."""
    findings: dict[Condition, Finding] = {}
    target, at = record.target, record.at
    if record.status is Status.UNREACHABLE:
        condition = ("target_unreachable", TARGET_COMPONENT)
        streak = state.streak(condition, at)
        findings[condition] = Finding(
            f"{name(target, '')}: health API not answering since {began(streak.since, at)}"
            f"{_reason(record.error)}",
            rules.unreachable_for,
            open_after if target_down else None,
            streak.checks,
        )
    for sample in record.services:
        window = slide(state, sample, at, rules.window)
        service = sample.service
        title = name(target, service)
        down = sample.status is Status.UNHEALTHY and _critical(sample.details)
        if down:
            condition = ("service_down", service)
            streak = state.streak(condition, at)
            error = sample.details.get("last_error") or sample.details.get("reason")
            findings[condition] = Finding(
                f"{title} down since {began(streak.since, at)}{_reason(error)}",
                float("inf"),
                open_after,
                streak.checks,
            )
        # A critical service down is one page, service_down: its breaker open and its failed
        # health checks are the same cause, and would page again minutes later (one firing,
        # one resolved per cause). Their windows still take its samples.
        if not down and sample.breaker_state not in (None, "closed"):
            condition = ("breaker_open", service)
            since = state.streak(condition, at).since
            findings[condition] = Finding(
                # Since when, not "for N min": a running figure would re-write the alert (a
                # store write) about once a minute for as long as the breaker stays open.
                f"{title}: circuit breaker {str(sample.breaker_state).replace('_', '-')} "
                f"since {began(since, at)}",
                rules.breaker_open_for,
            )
        failed = sum(1 for point in window if point.failing)
        if (
            not down
            and len(window) >= 3
            and failed / len(window) > rules.check_failure_rate
            and window[-1].failing
        ):
            findings[("health_check_failure_rate", service)] = Finding(
                f"{title}: {failed} of the last {len(window)} health checks failed",
                0.0,
                severity=failed / len(window),
            )
        refused = rise(point.refused for point in window)
        # Held only while callers are still refused (the latest step of the counter rose), as
        # the rate rules: a refusal minutes ago in the window must not hold it up after recovery.
        if refused and refusing(window):
            findings[("db_pool_exhausted", service)] = Finding(
                f"{title}: connection pool exhausted, {_count(refused, 'caller')} refused in "
                f"the last {span(rules.window)}",
                rules.pool_exhausted_for,
                severity=refused,
            )
        if service == "s3":
            rate = breaker_failure_rate(window)
            if rate is not None and rate > rules.s3_failure_rate and calls_failing(window):
                findings[("s3_failure_rate", service)] = Finding(
                    f"{title}: {_latest_rate(window)}{rate:.0%} of S3 operations failing over "
                    f"the last {span(rules.window)}",
                    0.0,
                    severity=rate,
                )
    return findings


def judge_check(
    rules: AlertRules,
    open_after: int,
    name: Names,
    record: CheckRecord,
    state: Replica,
    *,
    kind: str,
) -> dict[Condition, Finding]:
    """The conditions holding on one run of a ``[[checks]]`` entry of ``kind``:

    - ``check_failing``: the run did not pass (unhealthy, unreachable or unknown), for
      ``open_after`` runs in a row or ``unreachable_for`` seconds, whichever comes first; its
      summary says what failed (``Front door: [STATUS] == 200 failed: got 503 since …``);
    - ``certificate_expiring``: a ``tls`` check passed with a warning (its certificate expires
      within ``warn_days``; the warning is the healthy record's error): fires at once, its
      summary the check's name and the warning."""
    findings: dict[Condition, Finding] = {}
    at = record.at
    if record.status in FAILED_RUN:
        condition = (CHECK_FAILING, TARGET_COMPONENT)
        streak = state.streak(condition, at)
        what = one_line(record.error or "", CHECK_ERROR_CHARS) or record.status.value
        findings[condition] = Finding(
            f"{name(record.target, '')}: {what} since {began(streak.since, at)}",
            rules.unreachable_for,
            open_after,
            streak.checks,
        )
    elif record.status is Status.HEALTHY and kind == TLS and record.error:
        warning = one_line(record.error, CHECK_ERROR_CHARS)
        if warning:
            findings[(CERTIFICATE_EXPIRING, TARGET_COMPONENT)] = Finding(
                f"{name(record.target, '')}: {warning}", 0.0
            )
    return findings


def _critical(details: Mapping[str, object]) -> bool:
    return details.get("critical") is True


def _latest_rate(window: Window) -> str:
    """The latest step's failure rate, when it had calls enough to say one ("100% now, …")."""
    known = [point.calls for point in window if point.calls is not None]
    if len(known) < 2:
        return ""
    (failed_before, calls_before), (failed_after, calls_after) = known[-2], known[-1]
    calls = calls_after - calls_before
    if calls < MIN_CALLS or failed_after < failed_before:
        return ""
    return f"{(failed_after - failed_before) / calls:.0%} now, "


def began(start: float, at: float) -> str:
    """When a condition began, as a summary says it: ``22:41:03 UTC``, with the date once it is
    a day old. A fixed figure, not a running count ("for 57 checks"): the text, and the store's
    copy of it, change only when something that matters does (the error, the replicas), not at
    every check — a count would be one write per check per down component."""
    moment = datetime.fromtimestamp(start, UTC)
    if at - start < DAY:
        return moment.strftime("%H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _count(n: float, noun: str) -> str:
    return f"1 {noun}" if n == 1 else f"{n:g} {noun}s"


def _reason(error: object) -> str:
    """`` (the error)``, printable and cut; nothing for no error."""
    if not isinstance(error, str):
        return ""
    text = one_line(error, REASON_CHARS)
    return f" ({text})" if text else ""


def span(seconds: float) -> str:
    """A duration in a summary: ``45 s``, ``5 min``, ``3 h``."""
    if seconds < 60:
        return f"{max(0.0, seconds):.0f} s"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h"


def label(check: ReplicaCheck) -> str:
    name = check.instance.id if check.instance is not None and check.instance.id else check.replica
    return "".join(c for c in name[: LABEL_CHARS * 4] if c.isprintable())[:LABEL_CHARS]


def summary(where: list[Held], replicas: int) -> str:
    """The worst replica's finding; with several replicas, on how many and which."""
    worst = max(where, key=lambda h: h.finding.severity)
    if replicas == 1:
        return worst.finding.summary
    labels = [h.label for h in sorted(where, key=lambda h: h.replica)]
    named = ", ".join(labels[:NAMED_REPLICAS])
    if len(labels) > NAMED_REPLICAS:
        named += f" +{len(labels) - NAMED_REPLICAS} more"
    return f"{worst.finding.summary} on {len(where)}/{replicas} replicas ({named})"
