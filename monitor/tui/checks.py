"""How a ``[[checks]]`` entry reads on the on-call screens: its row's name cell (kind and whether
it is private), and its detail (what it checks, its conditions, its latest result).

A check is a component of its own: no services, no replicas, no breakers. What its runs say (the
failed condition and the value observed, a certificate's warning) was written by the monitor
from a target's answers: it is shown bounded and as plain text, never as markup. What the config
says is shown as :attr:`Check.where` says it, never a URL's user info, query or a header's value.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Protocol

from rich.text import Text

from monitor.checks.conditions import HTTP_DEFAULT
from monitor.checks.spec import (
    Check,
    CheckKind,
    DnsSettings,
    HttpSettings,
    Outcome,
    TcpSettings,
    TlsSettings,
)
from monitor.store import Status
from monitor.tui.data import ComponentRow
from monitor.tui.formatting import DASH, bounded, duration, last_error, millis, timestamp

PRIVATE_MARK = "⊘"
"""After a check's kind on its row: private, not on the status page."""
KIND_LABELS = {CheckKind.POSTGRES.value: "pg"}
"""Short labels for the row (the compact layout has 13 columns for name, kind and mark)."""
CONDITIONS_SHOWN = 20
"""A check has at most 20 conditions; each is cut to a line."""
CONDITION_CHARS = 120
ERROR_CHARS = 200
"""What the store keeps of a run's error or warning."""
IMPLICIT = {
    CheckKind.HTTP: f"it answers (the default when none is written: {HTTP_DEFAULT})",
    CheckKind.TCP: "it accepts a connection",
    CheckKind.DNS: "[DNS_RCODE] == NOERROR",
    CheckKind.TLS: "a chain valid for the name",
    CheckKind.POSTGRES: "it connects and SELECT 1 returns 1",
}
"""What each kind checks besides the conditions written (issue #16)."""


class CheckRunning(Protocol):
    """What runs a check on demand (``c``): :class:`monitor.checks.run.CheckRunner`."""

    async def run(self, check: Check) -> Outcome: ...

    async def aclose(self) -> None: ...


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def check_cell(row: ComponentRow, width: int) -> Text:
    """``Front door http ⊘``: the title cut so that its kind and mark always show."""
    kind = kind_label(row.kind or "")
    suffix = len(kind) + 1 + (2 if not row.public else 0)
    text = Text(bounded(row.title, max(1, width - suffix)), style="bold")
    text.append(f" {kind}", style="cyan")
    if not row.public:
        text.append(f" {PRIVATE_MARK}", style="dim")
    return text


def run_text(row: ComponentRow, limit: int) -> Text:
    """The latest run's error (red) or, on a healthy check, its warning (yellow); "" if none."""
    if not row.error:
        return Text("")
    # Cut between words, as a service's last error is: a cut condition reads as another one.
    return Text(last_error(row.error, None, 0.0, limit), style="yellow" if row.warning else "red")


def heading(row: ComponentRow) -> str:
    return f"{bounded(row.title, 80)} ({row.kind} check {bounded(row.target, 63)})"


def what_text(check: Check | None, row: ComponentRow) -> Text:
    """Kind, what it checks, how often, and whether the status page shows it."""
    text = Text()
    _figure(text, "kind", row.kind or DASH)
    if check is None:
        text.append("\nNot in this TUI's monitor.toml: its settings are unknown here.", style="dim")
    else:
        _figure(text, "checks", bounded(check.where, 120))
        for name, value in _settings(check):
            _figure(text, name, value)
        _figure(text, "every", f"{duration(check.interval)}, timeout {duration(check.timeout)}")
    if row.public:
        _figure(text, "public", "yes: on the status page (its incidents are public)")
    else:
        _figure(text, "public", f"no {PRIVATE_MARK}: operators' alone (alerts, no incidents)")
    return text


def _settings(check: Check) -> list[tuple[str, str]]:
    """What else the kind's settings say that is not a secret (no header's value, no body)."""
    settings = check.settings
    if isinstance(settings, HttpSettings):
        found = [("method", settings.method)]
        if settings.token_env:
            found.append(("token from", f"${bounded(settings.token_env, 60)}"))
        if not settings.follow_redirects:
            found.append(("redirects", "not followed"))
        return found
    if isinstance(settings, TlsSettings):
        found = [("days", f"fails under {settings.min_days}, warns under {settings.warn_days}")]
        if settings.server_name:
            found.append(("name", bounded(settings.server_name, 80)))
        return found
    if isinstance(settings, DnsSettings):
        return [("expect", bounded(", ".join(settings.expect), 120))] if settings.expect else []
    if isinstance(settings, TcpSettings):
        return [("expect", bounded(settings.expect, 60))] if settings.expect else []
    return []  # postgres: the variable its URL is read from is what `where` says


def conditions_text(check: Check | None) -> Text:
    """The conditions as written, each on its line, and what the kind checks besides."""
    if check is None:
        return Text(DASH, style="dim")
    text = Text()
    for condition in check.conditions[:CONDITIONS_SHOWN]:
        text.append("• ")
        text.append(bounded(condition.text, CONDITION_CHARS))
        text.append("\n")
    if not check.conditions:
        text.append("none written\n", style="dim")
    text.append(f"and always: {IMPLICIT[check.kind]}", style="dim")
    return text


def result_text(row: ComponentRow, tz: tzinfo, now: float) -> Text:
    """The latest run: status, response time, HTTP status, and what failed or warns."""
    if row.checked_at is None:
        return Text("Not run yet (the daemon runs it every interval; c runs it now).", style="dim")
    text = Text(row.status.value, style="bold")
    text.append(f" in {millis(row.response_ms)}")
    if row.http_status is not None:
        text.append(f" · HTTP {row.http_status}")
    text.append(f"\n{timestamp(row.checked_at, tz)} ({duration(now - row.checked_at)} ago)")
    text.append("\n")
    if row.error:
        if row.warning:
            text.append("warning: ", style="bold")
        text.append_text(run_text(row, ERROR_CHARS))
    elif row.status is Status.HEALTHY:
        text.append("every condition held", style="green")
    return text


def outcome_words(outcome: Outcome) -> str:
    """``unhealthy in 12 ms ([STATUS] == 200 failed: got 503)``, for the result line."""
    words = f"{outcome.status.value} in {millis(outcome.latency_ms)}"
    said = outcome.error if outcome.error is not None else outcome.warning
    if said:
        words += f" ({bounded(said, ERROR_CHARS)})"
    return words


def _figure(text: Text, name: str, value: str) -> None:
    if text.plain:
        text.append("\n")
    text.append(f"{name:<10} ", style="dim")
    text.append(value)
