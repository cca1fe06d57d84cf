"""The monitor's alerts about itself (issue #14, DESIGN decision 6): monitoring must never go quiet
without saying so.

Alerts like the others — same table, same notifiers, the same lifecycle in :class:`AlertEngine`
(re-evaluated every check, resolved after the hold-down) — raised through
``AlertEngine.report``.

**Their own component keys.** A target's self-alerts are on ``@monitor/TARGET`` (stored as target
``@monitor``, service ``TARGET``), the store's on ``@monitor``; never on the target's own key.
A silence covers a key and the keys below it, so silencing the token warning
(``questcity alert silence @monitor/questcity-api``, or the TUI's ``s`` on that alert) never
covers the database's page (``questcity-api/database``), and silencing a target in maintenance
(``questcity-api``) never hides that the monitor went blind on it. ``@monitor`` silences all of
the monitor's own alerts. (The other design, a flag on the silence, would need a store column
and every reader of silences to know it; a key needs neither.)

- ``monitor_token_missing``: the target names a ``token_env`` and the variable is unset or blank:
  the probe reads only the public summary, so breaker, pool and S3 alerts cannot fire.
- ``monitor_token_rejected``: a replica's ``/detailed`` refused the token (401/403, from the probe,
  ``ReplicaCheck.token_refused``), or the token's ``exp`` has passed. Same blindness.
- ``monitor_token_expiring``: the token (a JWT) expires within ``alerts.token_expiry_warning``.
  Its ``exp`` is read *without* verifying the signature — the monitor does not hold the backend's
  key, and only the backend's verdict (a refusal) decides whether the token works; the date is
  for warning people in time. A token that is not a JWT has no expiry to warn about.
- ``monitor_checks_missed``: APScheduler skipped runs of the target's check, or of a
  ``[[checks]]`` entry (late past its grace time, or the last still running): its figures are
  going stale. Fires after ``incidents.open_after`` skipped runs with no run on time between
  them, or skipped runs ``hold_down`` seconds apart — one miss (a laptop's suspend, one slow
  round) pages nobody. Clears once a run completes within its interval (its hold-down counted
  from there).
- ``monitor_store_unwritable``: the store refused checks (a ``StoreError`` other than
  ``LeaseLost``): ``incidents.open_after`` of one target's checks in a row, or every write for
  ``hold_down`` seconds — one "database is locked" pages nobody. It cannot be recorded while the
  store fails: the firing notice goes straight to the notifiers
  (``AlertEngine.announce_unstored``) and to the log, once; the daemon keeps checking. Once the
  store has taken every write for ``hold_down`` seconds, the alert is recorded (fired when the
  store first failed, resolved now) and the resolved notice sent.

**Orphans.** An alert taken up from the store after a restart whose reporter is gone (the
target's ``token_env`` removed, the target removed from the config) would fire for ever: nothing
reports it clear. At the first round after the start, every firing self-alert no rule here
still judges is resolved (``AlertEngine.resolve_unclaimed``), logged.

Each summary says what to do. A change of a target's token state is logged once, not at every
check. No summary or log line holds the token itself; the environment variable's name is said.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import jwt

from monitor.config import MonitorConfig, Target
from monitor.store import AlertState, HistoryWrite, ReplicaCheck, StoreError
from shared.resilience.sanitize import one_line

logger = logging.getLogger("monitor.self_alerts")

MONITOR = "@monitor"
"""The component key of the monitor itself (DESIGN decision 6); ``@monitor/TARGET`` for what it
knows of one target (its token, its runs)."""

TOKEN_MISSING = "monitor_token_missing"
TOKEN_REJECTED = "monitor_token_rejected"
TOKEN_EXPIRING = "monitor_token_expiring"
CHECKS_MISSED = "monitor_checks_missed"
STORE_UNWRITABLE = "monitor_store_unwritable"
RULES = (TOKEN_MISSING, TOKEN_REJECTED, TOKEN_EXPIRING, CHECKS_MISSED, STORE_UNWRITABLE)
TOKEN_RULES = (TOKEN_MISSING, TOKEN_REJECTED, TOKEN_EXPIRING)

MONITOR_TTL = 90 * 24 * 3600
"""The ``--ttl`` a summary suggests for a monitor's token: 90 days, as the deploy files mint it
(a rotation a quarter, warned of days ahead; ``questcity token``'s default hour is for people)."""
MAX_TOKEN_CHARS = 16 * 1024
"""A token longer than this is not decoded (it comes from the environment; a JWT is < 2 KiB)."""
CHECK_JOB = "check:"
"""The prefix of a target's (or a ``[[checks]]`` entry's) job id in the daemon's scheduler."""


class Reports(Protocol):
    """What :class:`SelfAlerts` needs of the alert engine."""

    async def report(
        self, rule: str, target: str, service: str, summary: str | None, at: float
    ) -> None:
        """The condition of ``rule`` on (target, service) as of ``at``: its summary while it
        holds, None when it does not."""

    def announce_unstored(
        self, rule: str, target: str, service: str, state: str, summary: str, at: float
    ) -> None:
        """Send a notice (``state`` firing or resolved) of an alert not in the store."""

    async def resolve_unclaimed(
        self, rules: Collection[str], claimed: Collection[tuple[str, str, str]], at: float
    ) -> list[tuple[str, str, str]]:
        """Resolve the firing alerts of ``rules`` whose (rule, target, service) is not
        ``claimed``."""


@dataclass(frozen=True, slots=True)
class _Expiry:
    at: float | None
    """The token's ``exp`` (seconds since the epoch); None: not a JWT, or no usable ``exp``."""


@dataclass(slots=True)
class _Missed:
    count: int
    since: float
    last: float = 0.0
    """When the latest skipped run was said."""

    def due(self, open_after: int, hold_down: float) -> bool:
        """Enough skipped runs to page: ``open_after`` of them, or for ``hold_down`` seconds."""
        return self.count >= open_after or self.last - self.since >= hold_down


@dataclass(slots=True)
class _Refusing:
    """The store refusing checks, before it pages (see :meth:`SelfAlerts.store_failed`)."""

    since: float
    """The first refusal since a write last succeeded."""
    rounds: dict[str, int]
    """Target → its checks refused in a row."""


@dataclass(slots=True)
class _Unwritable:
    since: float
    error: str
    summary: str
    writable_since: float | None = None
    """Since when every write has succeeded (None: the last one failed)."""
    alert_id: int | None = None
    """Its row, once recorded."""


class SelfAlerts:
    """Judges the monitor's own health after each check of a target, on the check's clock."""

    def __init__(
        self,
        config: MonitorConfig,
        alerts: Reports,
        writer: HistoryWrite,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._warning = config.alerts.token_expiry_warning
        self._hold_down = config.alerts.hold_down
        self._open_after = config.incidents.open_after
        self._targets = config.targets
        self._jobs = [t.name for t in config.targets] + [c.name for c in config.checks]
        """The names of the scheduler's check jobs (targets and ``[[checks]]``)."""
        self._alerts = alerts
        self._writer = writer
        self._environ = environ
        self._expiry: dict[str, _Expiry] = {}
        """Token → its decoded expiry (decoded once per token value, not at every check)."""
        self._said: dict[str, str] = {}
        """Target → the token state last logged ("" when fine)."""
        self._missed: dict[str, _Missed] = {}
        self._unwritable: _Unwritable | None = None
        self._refusing: _Refusing | None = None
        self._orphans_judged = False

    # -- tokens ------------------------------------------------------------------------------

    async def after_check(
        self, target: Target, checks: Sequence[ReplicaCheck], at: float, *, took: float
    ) -> None:
        """Judge the target's token rules on this round's ``checks`` (each replica's answer), and
        clear its missed-checks alert when the round took less than the interval."""
        if not self._orphans_judged:
            self._orphans_judged = True
            await self._resolve_orphans(at)
        if target.token_env:
            for rule, summary in self._token_findings(target, checks, at).items():
                await self._alerts.report(rule, MONITOR, target.name, summary, at)
        await self.ran(target.name, target.interval, at, took=took)

    async def ran(self, name: str, interval: float, at: float, *, took: float) -> None:
        """A run of the job of ``name`` (a target's round, or a ``[[checks]]`` entry's run)
        ended, having taken ``took`` seconds: its missed-checks alert clears when that is within
        its ``interval``."""
        if not self._orphans_judged:
            self._orphans_judged = True
            await self._resolve_orphans(at)
        missed = self._missed.get(name)
        if missed is not None and took <= interval:
            del self._missed[name]
            missed = None
            logger.info(
                "checks of %s run on time again",
                name,
                extra={"event": "checks_on_time", "target": name},
            )
        due = missed is not None and missed.due(self._open_after, self._hold_down)
        summary = _missed_summary(name, missed) if missed is not None and due else None
        await self._alerts.report(CHECKS_MISSED, MONITOR, name, summary, at)

    async def _resolve_orphans(self, at: float) -> None:
        """Resolve the self-alerts taken up from the store that no rule here judges any more
        (see the module's docstring): every target's and check's missed runs, and the token
        rules of the targets that name a ``token_env``, are judged; anything else of these rules
        is not."""
        claimed = {(CHECKS_MISSED, MONITOR, name) for name in self._jobs}
        claimed |= {
            (rule, MONITOR, t.name) for t in self._targets if t.token_env for rule in TOKEN_RULES
        }
        rules = (*TOKEN_RULES, CHECKS_MISSED)
        for rule, _, name in await self._alerts.resolve_unclaimed(rules, claimed, at):
            logger.info(
                "%s of %s resolved at start: no longer judged (its target or token_env is gone)",
                rule,
                name,
                extra={"event": "self_alert_orphan", "rule": rule, "target": name},
            )

    def _token_findings(
        self, target: Target, checks: Sequence[ReplicaCheck], at: float
    ) -> dict[str, str | None]:
        """The token rules to report this round, each with its summary or None (clear). A rule
        this round says nothing about is left out: with no replica answering over HTTP (all
        unreachable, or none discovered) nobody took or refused the token."""
        variable = target.token_env or ""
        token = target.token(self._environ)
        if token is None:
            summary = (
                f"{target.name}: {variable} is not set, so the monitor reads only the public "
                "health summary (no breaker, pool or S3 alerts): "
                f"{_remedy(variable)} and restart the monitor"
            )
            self._say(
                target, "missing", f"{variable} for {target.name} is not set: {_remedy(variable)}"
            )
            return {TOKEN_MISSING: summary, TOKEN_REJECTED: None, TOKEN_EXPIRING: None}
        findings: dict[str, str | None] = {TOKEN_MISSING: None}
        expires = self._expires(token)
        refused = [c for c in checks if c.token_refused is not None]
        answered = [c for c in checks if c.token_refused is not None or c.record.http_status]
        if expires is not None and expires <= at:
            findings[TOKEN_REJECTED] = (
                f"{target.name}: the monitor's token ({variable}) expired at "
                f"{_when(expires)}, so breaker, pool and S3 alerts are blind: {_remedy(variable)}"
            )
            self._say(
                target,
                "expired",
                f"token for {target.name} expired at {_when(expires)}: {_remedy(variable)}",
            )
        elif refused:
            code = refused[0].token_refused
            where = "" if len(checks) <= 1 else f" by {len(refused)}/{len(checks)} replicas"
            findings[TOKEN_REJECTED] = (
                f"{target.name}: the monitor's token ({variable}) was rejected (HTTP {code})"
                f"{where}, so breaker, pool and S3 alerts are blind: {_remedy(variable)}"
            )
            self._say(
                target,
                f"rejected {code}",
                f"token for {target.name} rejected (HTTP {code}): {_remedy(variable)}",
            )
        elif answered:
            findings[TOKEN_REJECTED] = None
            self._say(target, "", "")
        if expires is not None and at < expires <= at + self._warning:
            findings[TOKEN_EXPIRING] = (
                f"{target.name}: the monitor's token ({variable}) expires in "
                f"{_span(expires - at)} ({_when(expires)}): {_remedy(variable)} before then"
            )
        else:
            findings[TOKEN_EXPIRING] = None
        return findings

    def _expires(self, token: str) -> float | None:
        known = self._expiry.get(token)
        if known is None:
            if len(self._expiry) > 64:  # tokens rotate rarely; never grow without bound
                self._expiry.clear()
            known = self._expiry[token] = _Expiry(_exp(token))
        return known.at

    def _say(self, target: Target, state: str, line: str) -> None:
        """Log a change of the target's token state, once (not at every check)."""
        if self._said.get(target.name, "") == state:
            return
        self._said[target.name] = state
        extra = {"event": "monitor_token", "target": target.name, "state": state or "ok"}
        if state:
            logger.warning("%s", line, extra=extra)
        else:
            logger.info("token for %s accepted again", target.name, extra=extra)

    # -- missed runs -------------------------------------------------------------------------

    def missed(self, job_id: str, at: float) -> tuple[str, str] | None:
        """Note a skipped run of the job ``job_id``: (target, summary) to report if it is a
        target's check and its skipped runs are enough to page (see the module's docstring),
        else None (one miss; the retention job runs late by design)."""
        if not job_id.startswith(CHECK_JOB):
            return None
        name = job_id[len(CHECK_JOB) :]
        missed = self._missed.get(name)
        if missed is None:
            missed = self._missed[name] = _Missed(0, at)
        missed.count += 1
        missed.last = at
        if not missed.due(self._open_after, self._hold_down):
            return None
        return name, _missed_summary(name, missed)

    async def report_missed(self, target: str, summary: str, at: float) -> None:
        await self._alerts.report(CHECKS_MISSED, MONITOR, target, summary, at)

    # -- the store ---------------------------------------------------------------------------

    def store_failed(self, error: StoreError, at: float, target: str = "") -> None:
        """The store refused a check of ``target``. Once it has refused ``open_after`` of that
        target's checks in a row, or every write for ``hold_down`` seconds, announce it once,
        straight to the notifiers (it cannot be recorded now), and log it; a later failure
        restarts the hold-down, nothing more."""
        cause = _error_text(error)
        failing = self._unwritable
        if failing is not None:
            failing.error, failing.writable_since = cause, None
            return
        refusing = self._refusing
        if refusing is None:
            refusing = self._refusing = _Refusing(at, {})
        rounds = refusing.rounds[target] = refusing.rounds.get(target, 0) + 1
        if rounds < self._open_after and at - refusing.since < self._hold_down:
            return  # (the daemon logs the refusal itself)
        at, self._refusing = refusing.since, None
        summary = (
            f"the monitor cannot write its store ({cause}): checks go unrecorded and the TUI and "
            "status page show stale figures; check the storage database or file (the server, "
            "free space, permissions); the monitor keeps checking and records again once it can"
        )
        self._unwritable = _Unwritable(at, cause, summary)
        cause_class = type(error).__name__
        logger.error("%s", summary, extra={"event": STORE_UNWRITABLE, "cause": cause_class})
        self._alerts.announce_unstored(STORE_UNWRITABLE, MONITOR, "", "firing", summary, at)

    async def store_written(self, at: float, target: str = "") -> None:
        """A check of ``target`` was stored. If the store had been failing (paged) and has now
        taken every write for ``hold_down`` seconds (a flapping store pages once, not at every
        flap), record its alert — fired when the store first failed, resolved now, both notices
        accounted for — and send the resolved notice. Refusals not paged yet start again."""
        failing = self._unwritable
        if failing is None:
            refusing = self._refusing
            if refusing is not None:
                refusing.since = at  # every write since the last refusal: not "for hold_down"
                refusing.rounds.pop(target, None)
                if not refusing.rounds:
                    self._refusing = None
            return
        if failing.writable_since is None:
            failing.writable_since = at
        if at - failing.writable_since < self._hold_down:
            return
        writer = self._writer
        if failing.alert_id is None:  # kept: a write failing below does not record it twice
            failing.alert_id = await writer.fire_alert(
                STORE_UNWRITABLE, MONITOR, "", failing.summary, failing.since
            )
        resolved = (
            f"the monitor's store takes writes again (it failed for {_span(at - failing.since)}, "
            f"last: {failing.error}); checks from that time are missing from the history"
        )
        await writer.resolve_alert(failing.alert_id, at, resolved)
        # The firing notice went out unstored; the resolved one goes now: none is owed.
        await writer.mark_notified(failing.alert_id, AlertState.RESOLVED)
        self._unwritable = None
        logger.info("%s", resolved, extra={"event": "store_writable"})
        self._alerts.announce_unstored(STORE_UNWRITABLE, MONITOR, "", "resolved", resolved, at)

    @property
    def store_failing(self) -> bool:
        return self._unwritable is not None


def _exp(token: str) -> float | None:
    """The ``exp`` of a JWT, read without verifying anything (see the module's docstring)."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not 0 < exp < 1e11:
        return None
    return float(exp)


def _remedy(variable: str) -> str:
    return (
        f"mint a new one with questcity token --role operator --ttl {MONITOR_TTL} "
        f"and set {variable}"
    )


def _missed_summary(name: str, missed: _Missed) -> str:
    runs = "1 check" if missed.count == 1 else f"{missed.count} checks"
    return (
        f"{name}: {runs} skipped since {_when(missed.since)} (the monitor was busy or a check "
        "still running), so its figures are stale: look at the monitor's CPU, its log's "
        "check_missed lines and the store's latency"
    )


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    """Coarse on purpose: a summary re-written with new figures at every check would be a
    store write per check; this changes at most once a minute, in the last hour."""
    if seconds >= 2 * 86400:
        return f"{seconds // 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600:.0f} hours"
    return f"{max(1.0, seconds // 60):.0f} min"


def _error_text(error: StoreError) -> str:
    """The store's own message (no hosts or passwords, :mod:`monitor.store.errors`), bounded."""
    return one_line(str(error), 200) or type(error).__name__
