"""The banner's words: the worst state of anything watched, why alerts fire beside operational
components, and the monitor's own alerts with what to do — from an :class:`Overview`.

Apart from :mod:`monitor.tui.data` (what is read) because this is what is said about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.store import Alert, Status
from monitor.tui.data import Overview
from monitor.tui.formatting import bounded, duration

__all__ = [
    "MONITOR_RULE_PREFIX",
    "Summary",
    "firing_why",
    "is_monitor_alert",
    "monitor_warnings",
    "summarize",
]

SUMMARY_NAMED = 6
"""Targets the banner names; the rest are counted."""
MONITOR_RULE_PREFIX = "monitor_"
"""Rules of the monitor's alerts about itself (its token, its checks, its store)."""
SUMMARY_CHARS = 80
"""Characters of an alert's summary the banner quotes."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The banner: the worst state of anything watched, in a headline and one line of detail."""

    level: Status
    headline: str
    detail: str
    alerting: bool = False
    """Every component is operational yet alerts fire: the headline says why (never a bare
    "ALL SYSTEMS OPERATIONAL" beside a firing alert)."""


def is_monitor_alert(alert: Alert) -> bool:
    """An alert about the monitor itself, not about what it watches."""
    return alert.rule.startswith(MONITOR_RULE_PREFIX)


def _where(alert: Alert) -> str:
    return alert.target + (f"/{alert.service}" if alert.service else "")


def firing_why(overview: Overview) -> str:
    """Why alerts fire while every component is operational: the one still holding, or how far
    along the hold-down the resolving ones are (``resolving: clear for 12s of a 30s
    hold-down``). The clock is the component's: healthy since its last change."""
    holding: list[Alert] = []
    clear_for: list[float | None] = []
    for alert in overview.alerts:
        if is_monitor_alert(alert):
            continue
        row = overview.row(f"{alert.target}::{alert.service}")
        if row is None or row.status is not Status.HEALTHY:
            holding.append(alert)
        else:
            clear_for.append(None if row.since is None else max(0.0, overview.now - row.since))
    hold = duration(overview.hold_down)
    if holding:
        first = holding[0]
        more = f" and {len(holding) - 1} more" if len(holding) > 1 else ""
        summary = bounded(first.summary, SUMMARY_CHARS)
        return f"held by {first.rule} on {_where(first)}{more}: {summary}"
    known = [value for value in clear_for if value is not None]
    if len(known) < len(clear_for) or not known:
        return f"resolving: clear again, waiting out the {hold} hold-down"
    least = min(known)
    if least < overview.hold_down:
        return f"resolving: clear for {duration(least)} of a {hold} hold-down"
    return (
        f"clear for {duration(least)}, past the {hold} hold-down: the next check resolves it "
        "(if it does not, is the monitor running?)"
    )


_MONITOR_WORDS = {
    "monitor_token_missing": (
        "The monitor has no operator token for {where}",
        "breaker, pool and S3 alerts are off: mint one (questcity token --role operator) and "
        "set the target's token_env",
    ),
    "monitor_token_rejected": (
        "The monitor's operator token for {where} is refused",
        "breaker, pool and S3 alerts are blind: mint a new one (questcity token --role "
        "operator) and set the target's token_env",
    ),
    "monitor_token_expiring": (
        "The monitor's operator token for {where} expires soon",
        "mint a new one (questcity token --role operator) before it does",
    ),
    "monitor_checks_missed": (
        "The monitor missed checks of {where}",
        "look at the monitor's load and log",
    ),
    "monitor_store_unwritable": (
        "The monitor cannot write its store",
        "check the store's disk space, permissions or database, and the monitor's log",
    ),
}
MONITOR_SUMMARY_CHARS = 300
"""Characters of a monitor self-alert's summary shown (it says what to do: not cut short)."""


def monitor_warnings(alerts: Sequence[Alert]) -> list[str]:
    """One line per firing alert about the monitor itself: what is wrong, then what to do (the
    alert's own summary says it; these words when it is empty)."""
    lines = []
    for alert in alerts:
        if not is_monitor_alert(alert):
            continue
        what, do = _MONITOR_WORDS.get(alert.rule, (f"The monitor: {alert.rule} on {{where}}", ""))
        summary = bounded(alert.summary, MONITOR_SUMMARY_CHARS) or do
        lines.append(f"⚠ {what.format(where=_where(alert))}" + (f" — {summary}" if summary else ""))
    return lines


def summarize(overview: Overview) -> Summary:
    checked = [row for row in overview.rows if row.checked_at is not None]
    if not checked:
        return Summary(
            Status.UNKNOWN,
            "NO DATA YET",
            "No checks in the store yet: is `questcity monitor` running with this config?",
        )
    worst = max((row.status for row in checked), key=lambda s: s.severity)
    troubled: dict[str, list[str]] = {}
    for row in overview.rows:
        if not row.is_target and row.status not in (Status.HEALTHY, Status.UNKNOWN):
            troubled.setdefault(row.target, []).append(f"{row.title} {row.status.value}")
    named = [
        f"{row.title} {row.status.value}"
        + (f" ({', '.join(troubled[row.target])})" if row.target in troubled else "")
        for row in overview.rows
        if row.is_target and row.status not in (Status.HEALTHY, Status.UNKNOWN)
    ]
    # A fleet in trouble must not push the table off the screen: a few named, the rest counted.
    parts = named[:SUMMARY_NAMED]
    if len(named) > SUMMARY_NAMED:
        parts.append(f"{len(named) - SUMMARY_NAMED} more targets not healthy")
    if overview.alerts:
        count = len(overview.alerts)
        parts.append(f"{count} alert{'s' if count != 1 else ''} firing")
    if overview.stale:
        stale = ", ".join(overview.stale[:SUMMARY_NAMED])
        if len(overview.stale) > SUMMARY_NAMED:
            stale += f" and {len(overview.stale) - SUMMARY_NAMED} more"
        parts.append(f"no recent check of {stale}: is the daemon running?")
    watched = [alert for alert in overview.alerts if not is_monitor_alert(alert)]
    if worst is Status.HEALTHY and watched:
        firing = f"{len(watched)} alert{'s' if len(watched) != 1 else ''} firing"
        headline = f"Components operational — {firing} ({firing_why(overview)})"
        return Summary(worst, headline, " · ".join(parts), alerting=True)
    if worst is Status.HEALTHY and overview.alerts:
        # The monitor's own trouble (a refused token: it sees less than it says) is no all-clear.
        count = len(overview.alerts)
        headline = (
            f"Components operational as far as the monitor can tell — {count} alert"
            f"{'s' if count != 1 else ''} about the monitor itself (below)"
        )
        return Summary(worst, headline, " · ".join(parts), alerting=True)
    if worst is Status.HEALTHY:
        headline = "ALL SYSTEMS OPERATIONAL"
    elif worst is Status.DEGRADED:
        headline = "DEGRADED"
    else:
        headline = "OUTAGE"
    return Summary(worst, headline, " · ".join(parts) or "Every check passed.")
