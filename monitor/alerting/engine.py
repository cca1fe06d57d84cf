"""The alert engine: each alert's lifecycle, from its conditions (:mod:`.rules`) to the store
and the notifiers.

- **Every check re-judges every condition** with the current figures. A firing alert whose
  text changed is re-written in the store (``update_alert``); a text change owes no notice.
- **Hold-down.** A firing alert resolves only once its condition has been clear continuously
  for ``[alerts] hold_down`` seconds of the check clock; the condition coming back within it
  keeps the same alert (no second firing). The resolved notice carries the last figures.
- **Silences** (from the store): an alert a silence covers is recorded and shown as usual, but
  its notices are held — logged, and marked handled in the outbox, not sent. When the silence
  ends while the alert still fires, its firing notice goes out then (if it was held).
- **Maintenance windows** (from the store, issue #15) hold notices as a silence does, with a
  ``held_alert`` event written into the window once per alert (its rule and component), so the
  window's page tells what it held; the monitor's own alerts are never held by a window.
- **Reminders**: on every check of a target, each of its firing alerts that is neither acked,
  silenced nor clearing is handed to the dispatcher, which reminds each notifier with a
  ``repeat_every`` when that much time has passed (:meth:`Dispatcher.remind`).
- **Conditions judged elsewhere** (the monitor's self-alerts) come in through :meth:`report`
  and live the same life; a notice that cannot be stored at all (the store failing) goes out
  through :meth:`announce_unstored`.

An alert's transition is written first and announced after: a monitor that lost its leadership
(``LeaseLost`` from the fenced write) neither pages anyone nor believes an alert fires that the
store never took. The store is also the notices' outbox (see :mod:`monitor.alerts`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from monitor.alerting.quiet import Hold, Quiet, log_held, record_held
from monitor.alerting.rules import RULES, WARNINGS, Held, Names, judge, judge_check, label, summary
from monitor.alerting.samples import Replica, follow, forget
from monitor.config import MonitorConfig
from monitor.notifiers import AlertNotice, Dispatcher
from monitor.store import (
    TARGET_COMPONENT,
    AlertState,
    CheckRecord,
    HistoryRead,
    HistoryWrite,
    LeaseLost,
    ReplicaCheck,
    Status,
    StoreError,
    component_key,
)
from shared.resilience.sanitize import one_line

logger = logging.getLogger("monitor.alerts")

Key = tuple[str, str, str]  # rule, target, service

SUMMARY_CHARS = 300
"""A summary reported from outside the engine is cut to this."""
RESUMED_ALERTS = 1000


@dataclass
class _Firing:
    alert_id: int
    summary: str
    started_at: float
    external: bool = False
    """Judged outside the engine (:meth:`AlertEngine.report`): a check does not clear it."""
    clear_since: float | None = None
    """Since when its condition has been clear (None: it holds)."""
    held: bool = False
    """Its firing notice was held by a silence and is owed when the silence ends."""
    silenced: bool = False
    """A silence covered it at the last look (no reminders meanwhile)."""
    resumed: bool = False
    """Taken up from the store; whether its firing notice was held is judged at its first look."""


class AlertEngine:
    def __init__(
        self,
        config: MonitorConfig,
        writer: HistoryWrite,
        dispatcher: Dispatcher,
        reader: HistoryRead,
    ) -> None:
        self._rules = config.alerts
        self._open_after = config.incidents.open_after
        self._name = Names(config)
        self._checks = {check.name: check.kind.value for check in config.checks}
        """A ``[[checks]]`` entry's kind by its name: its runs are judged by the check rules."""
        self._writer = writer
        self._dispatcher = dispatcher
        self.quiet = Quiet(reader)
        """The silences, acks and windows last read (shared with the incident tracker and the
        maintenance watcher: one read of them per refresh)."""
        self._held: set[tuple[int, int]] = set()
        """(alert id, window id) of each ``held_alert`` event written (or logged): once each."""
        self._firing: dict[Key, _Firing] = {}
        self._replicas: dict[str, dict[str, Replica]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        """One per target: a check and a report of the same target never interleave."""

    # -- taking over

    async def resume(self, reader: HistoryRead, *, at: float) -> None:
        """Take up the firing alerts from the store, and send the notices it still owes (their
        sender died before marking them): each once more, marked when handled — unless a
        silence covers its component now: then it is held as any silenced notice (logged,
        marked), and a firing one goes out when the silence ends. ``at`` is the check clock's
        now: a re-sent firing notice counts as a send then, so reminders come ``repeat_every``
        after the takeover, not at once (its firing time is long past)."""
        for alert in await reader.alerts(active_only=True, limit=RESUMED_ALERTS):
            self._firing[(alert.rule, alert.target, alert.service)] = _Firing(
                alert.id,
                alert.summary,
                alert.started_at,
                external=alert.rule not in RULES,
                resumed=True,
            )
            if alert.acked_at is not None:
                self.quiet.ack(alert.id)
        await self.quiet.refresh(at)
        for alert in await reader.unnotified_alerts():
            when = alert.resolved_at if alert.resolved_at is not None else alert.started_at
            key = (alert.rule, alert.target, alert.service)
            notice = self._notice(key, alert.state.value, alert.summary, when, alert.id)
            silence = self.quiet.hold(alert.target, alert.service, at)
            if silence is None:
                self._announce(notice, at=at)
                continue
            await self._hold_notice(notice, silence)
            firing = self._firing.get(key)
            if notice.state == "firing" and firing is not None and firing.alert_id == alert.id:
                # Owed when the silence ends (judged at its checks, as a notice held at firing).
                firing.held = firing.silenced = True
                firing.resumed = False

    # -- what is firing

    @property
    def firing(self) -> Mapping[Key, str]:
        return {key: firing.summary for key, firing in self._firing.items()}

    def tracked(self, target: str) -> list[str]:
        """The replicas of ``target`` the engine keeps samples or holds for (sorted)."""
        return sorted(self._replicas.get(target, {}))

    # -- the checks

    async def observe(self, record: CheckRecord, replicas: Sequence[ReplicaCheck] = ()) -> None:
        """Judge one round of checks of ``record.target``: ``record`` is the target's aggregate,
        ``replicas`` what each replica answered (empty: ``record`` is the target's one replica).

        A store error (``LeaseLost`` among them) propagates from the transition it stopped: that
        transition is neither announced nor taken as done, so a later check tries it again."""
        target, now = record.target, record.at
        async with self._lock(target):
            await self.quiet.refresh(now)
            texts, due = self._judge(record, replicas)
            seen = _seen(record, replicas)
            for key in due:
                if key in self._firing or not self._paged(key):
                    await self._hold(key, texts[key], now, external=False)
            for key, firing in self._of(target):
                if firing.external:
                    continue  # cleared only by its reporter
                if key in texts:
                    firing.clear_since = None
                elif key[2] not in seen:
                    # Unknown is not healthy: a service this round did not see (the target
                    # unreachable, the service not reported) is not clearing. Its hold-down
                    # starts again once a check sees it clear (as incidents treat it).
                    firing.clear_since = None
                elif (other := _holding_on(key, texts)) is not None:
                    # One cause, one page: another rule still holds on the component, so the
                    # outage goes on under this alert, in that rule's words (not RESOLVED now
                    # and FIRING for the other rule at the next check).
                    firing.clear_since = None
                    await self._reword(firing, texts[other], now)
                elif firing.clear_since is None:
                    firing.clear_since = now
            for key, _ in self._of(target):
                await self._tend(key, now)

    def _judge(
        self, record: CheckRecord, replicas: Sequence[ReplicaCheck]
    ) -> tuple[dict[Key, str], set[Key]]:
        """Every key whose condition holds on any replica at all, with its summary (a firing
        alert is not clearing while it does); and those among them that have held long enough
        on at least one replica to fire."""
        checks = tuple(replicas) or (ReplicaCheck("", record),)
        target = record.target
        known = self._replicas.setdefault(target, {})
        held: dict[Key, list[Held]] = {}
        due: dict[Key, list[Held]] = {}
        for check in checks:
            state = follow(known, check, self._rules.window)
            at = check.record.at
            kind = self._checks.get(target)
            findings = (
                judge(
                    self._rules,
                    self._open_after,
                    self._name,
                    check.record,
                    state,
                    target_down=record.status is Status.UNREACHABLE,
                )
                if kind is None
                else judge_check(
                    self._rules, self._open_after, self._name, check.record, state, kind=kind
                )
            )
            unseen = check.record.status is Status.UNREACHABLE
            for condition in [c for c in state.since if c not in findings]:
                if unseen and condition[1]:
                    continue  # a service's condition is not known clear while it is unseen
                del state.since[condition]
            for condition, finding in findings.items():
                rule, service = condition
                key = (rule, target, service)
                streak = state.since[condition] = state.streak(condition, at)
                where = Held(check.replica, label(check), finding)
                held.setdefault(key, []).append(where)
                if finding.due(streak, at):
                    due.setdefault(key, []).append(where)
        forget(known, {check.replica for check in checks}, record.at, self._rules.window)
        texts = {key: summary(where, len(checks)) for key, where in held.items()}
        # A due key says where it is due (the replicas that held long enough).
        texts.update({key: summary(where, len(checks)) for key, where in due.items()})
        return texts, set(due)

    # -- conditions judged elsewhere

    async def report(
        self, rule: str, target: str, service: str, summary: str | None, at: float
    ) -> None:
        """A condition judged outside the engine (the monitor's self-alerts): ``summary`` while
        it holds (fires, or re-writes the firing alert's text), None once it is clear (resolves
        after ``hold_down`` clear, judged here and at the target's checks). Same lifecycle as
        the engine's own rules: silences, acks, reminders, the outbox. A store error
        propagates, as from :meth:`observe`."""
        if rule in RULES:
            raise ValueError(f"{rule} is judged by the engine itself")
        key = (rule, target, service)
        async with self._lock(target):
            await self.quiet.refresh(at)
            if summary is not None:
                await self._hold(key, _bounded(summary), at, external=True)
            else:
                firing = self._firing.get(key)
                if firing is None:
                    return
                if firing.clear_since is None:
                    firing.clear_since = at
            await self._tend(key, at)

    async def resolve_unclaimed(
        self, rules: Collection[str], claimed: Collection[Key], at: float
    ) -> list[Key]:
        """Resolve now each firing alert of one of the reporter's ``rules`` that it no longer
        judges (not in ``claimed``): taken up from the store after a restart, its reporter gone
        (a ``token_env`` removed, a target removed from the config), it would otherwise fire
        for ever — nobody reports it clear, and no check of its target tends it. No hold-down:
        there is nothing left to wait for. The keys resolved, for the log."""
        orphans = [
            key
            for key, firing in self._firing.items()
            if firing.external and key[0] in rules and key not in claimed
        ]
        for key in orphans:
            async with self._lock(key[1]):
                firing = self._firing.get(key)
                if firing is None:
                    continue
                await self.quiet.refresh(at)
                logger.info(
                    "alert %s on %s resolved: nothing judges it any more",
                    key[0],
                    component_key(key[1], key[2]),
                    extra={"event": "alert_unclaimed", "rule": key[0], "alert_id": firing.alert_id},
                )
                await self._resolve(key, firing, at, self.quiet.hold(key[1], key[2], at))
        return orphans

    def announce_unstored(
        self, rule: str, target: str, service: str, state: str, summary: str, at: float
    ) -> None:
        """A notice of no stored alert (``alert_id`` None), sent straight to the notifiers: for
        ``monitor_store_unwritable``, which cannot be stored while the store fails. A silence
        or a window the engine last read still holds it (as it holds a stored alert)."""
        notice = self._notice((rule, target, service), state, _bounded(summary), at, None)
        logger.warning(
            "alert %s not stored (the store is failing): %s",
            state,
            notice.summary,
            extra={"event": "alert_unstored", "rule": rule, "component": notice.component},
        )
        hold = self.quiet.hold(target, service, at)
        if hold is not None:
            self._log_held(notice, hold)
            return
        self._dispatcher.dispatch(notice)

    # -- the lifecycle

    async def _hold(self, key: Key, text: str, now: float, *, external: bool) -> None:
        """The condition of ``key`` holds with this text: fire, or keep firing with it."""
        firing = self._firing.get(key)
        if firing is not None:
            firing.clear_since = None
            await self._reword(firing, text, now)
            return
        alert_id = await self._writer.fire_alert(*key, text, now)
        # Firing once the store has it, and only then announced (see the module's docstring).
        firing = self._firing[key] = _Firing(alert_id, text, now, external)
        notice = self._notice(key, "firing", text, now, alert_id)
        silence = self.quiet.hold(key[1], key[2], now)
        if silence is None:
            self._announce(notice)
            return
        firing.held = firing.silenced = True
        await self._hold_notice(notice, silence)
        await self._held_by(key, firing, now)

    async def _reword(self, firing: _Firing, text: str, now: float) -> None:
        if text != firing.summary:
            await self._writer.update_alert(firing.alert_id, text, now)
            firing.summary = text

    async def _tend(self, key: Key, now: float) -> None:
        """A firing alert's look at this check: a silence begun or ended, the hold-down run
        out (resolved), or a reminder due."""
        firing = self._firing[key]
        _, target, service = key
        silence = self.quiet.hold(target, service, now)
        if firing.resumed:
            firing.resumed = False
            # A silence in force since before it fired held its firing notice then.
            firing.held = silence is not None and silence.starts_at <= firing.started_at
            firing.silenced = firing.held
        if silence is not None:
            await self._held_by(key, firing, now)
            # No reminders meanwhile; when it ends, one is due at once if repeat_every has
            # passed since the last send (as Alertmanager does): the engineer learns it still
            # fires.
            firing.silenced = True
        elif firing.silenced:
            firing.silenced = False
            if firing.held:
                firing.held = False
                notice = self._notice(
                    key, "firing", firing.summary, firing.started_at, firing.alert_id
                )
                self._announce(notice, at=now)  # reminders count from now, not its firing
        if firing.clear_since is not None:
            if now - firing.clear_since >= self._rules.hold_down:
                await self._resolve(key, firing, now, silence)
            return
        if not firing.silenced and not self.quiet.acked(firing.alert_id):
            notice = self._notice(key, "firing", firing.summary, firing.started_at, firing.alert_id)
            self._dispatcher.remind(notice, now)

    async def _resolve(self, key: Key, firing: _Firing, now: float, silence: Hold | None) -> None:
        await self._writer.resolve_alert(firing.alert_id, now, firing.summary)
        del self._firing[key]
        self._held = {held for held in self._held if held[0] != firing.alert_id}
        self._dispatcher.forget(firing.alert_id)
        notice = self._notice(key, "resolved", firing.summary, now, firing.alert_id)
        if silence is None:
            self._announce(notice)
        else:
            await self._hold_notice(notice, silence)

    # -- notices

    def _notice(
        self, key: Key, state: str, text: str, at: float, alert_id: int | None
    ) -> AlertNotice:
        rule, target, service = key
        return AlertNotice(
            rule,
            target,
            service,
            state,
            text,
            at,
            alert_id,
            component=component_key(target, service),
            name=self._name(target, service),
        )

    def _announce(self, notice: AlertNotice, *, at: float | None = None) -> None:
        self._dispatcher.dispatch(notice, self._mark, at=at)

    async def _hold_notice(self, notice: AlertNotice, silence: Hold) -> None:
        """A silenced notice: logged, and marked handled in the outbox (a successor does not
        send it either)."""
        self._log_held(notice, silence)
        await self._mark(notice)

    def _log_held(self, notice: AlertNotice, hold: Hold) -> None:
        log_held(notice, hold)

    async def _held_by(self, key: Key, firing: _Firing, now: float) -> None:
        """A window holds this firing alert (a silence may too): say so in the window, once per
        alert and window — not again when a leader before this one did (the window's events
        say so) — (a store that refuses it: logged with the text, not retried)."""
        rule, target, service = key
        hold = self.quiet.window(target, service, now)
        if hold is None or (firing.alert_id, hold.id) in self._held:
            return
        self._held.add((firing.alert_id, hold.id))
        marker = f"(alert #{firing.alert_id})"
        if await self.quiet.recorded(hold.id, "held_alert", marker):
            return
        text = f"{rule} on {component_key(target, service)} {marker}: {firing.summary}"
        await record_held(self._writer, hold.id, "held_alert", text, now)

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

    # -- helpers

    def _lock(self, target: str) -> asyncio.Lock:
        lock = self._locks.get(target)
        if lock is None:
            lock = self._locks[target] = asyncio.Lock()
        return lock

    def _paged(self, key: Key) -> bool:
        """Whether another of the engine's alerts already fires for this component: one cause,
        one page. S3 down pages once (its failure rate), not again when its failed health
        checks pass half the window and once more when its breaker has been open 5 minutes;
        if the first alert resolves while this condition still holds, this one fires then."""
        rule, target, service = key
        return any(
            other[1:] == (target, service)
            and other[0] != rule
            and other[0] not in WARNINGS
            and not firing.external
            for other, firing in self._firing.items()
        )

    def _of(self, target: str) -> list[tuple[Key, _Firing]]:
        return [(key, firing) for key, firing in self._firing.items() if key[1] == target]


def _seen(record: CheckRecord, replicas: Sequence[ReplicaCheck]) -> set[str]:
    """The components this round saw: the target itself, and each service some replica that
    answered reported. Nothing of an unreachable round but the target."""
    seen = {TARGET_COMPONENT}
    for check in tuple(replicas) or (ReplicaCheck("", record),):
        if check.record.status is not Status.UNREACHABLE:
            seen.update(sample.service for sample in check.record.services)
    return seen


def _holding_on(key: Key, texts: Mapping[Key, str]) -> Key | None:
    """Another engine rule holding on the same component as ``key`` (the first by name); never
    for a warning, nor a warning for another (:data:`~monitor.alerting.rules.WARNINGS`)."""
    rule, target, service = key
    if rule in WARNINGS:
        return None
    others = sorted(
        k for k in texts if k[1:] == (target, service) and k[0] != rule and k[0] not in WARNINGS
    )
    return others[0] if others else None


def _bounded(text: str) -> str:
    """A summary from outside the engine: printable, one line, cut."""
    return one_line(text, SUMMARY_CHARS)
