"""Incidents by cause: one open incident per cause, listing every component the cause affects.

**The cause.** Each check of a target names its causes: every failing service of the target
(degraded, unhealthy) is one; the target itself is one only when none of its services fails
(slow, unreachable, a blackhole, a bad answer) — a target degraded *because* S3 is down is S3's
problem, not a second one. A cause failing for ``open_after`` checks in a row opens its incident;
``resolve_after`` checks in a row with the cause clear resolve it. A service is clear when it is
healthy; the target as a cause is clear when it is healthy or when its trouble is explained by a
failing service (that service's incident lists it). A check that says nothing of a component
(unknown, or a service behind an unreachable target) moves neither count.

**What it lists.** The cause first, then the target when it is not healthy, each with the worst
status it had during the incident (``IncidentComponent``, with whether it is critical: what the
backend's samples said, ``details["critical"]``, remembered per component). Titles and bodies
come from :func:`monitor.impact.describe`; when a component's worst status grows the list is
re-written (``set_incident_components``), and when the incident's impact grows it is re-titled
(``retitle_incident``). Database and S3 down at once are two causes: two incidents, the API
listed in both.

**A target unreachable while a service's incident is open** opens the target's own incident and
is not attached to the service's. It is a different cause (the process, the host or the network,
not the dependency), it recovers on its own schedule, and while it lasts the check sees no
service at all: attaching it would title a dead host "Partial outage: Photos", and the service's
incident could not tell whether its own cause persists. So the service's incident stays open
untouched (its service is unknown, which moves no count), the target's incident opens after
``open_after`` unreachable checks, and each resolves when its own cause clears.

The timeline keeps the events it always had: ``opened``, a ``state_change`` when the cause's
status changes, ``resolved``.

**Maintenance windows** (issue #15). A cause an active window covers opens no incident: its
checks still count, and the window records ``held_incident`` once. When the window ends (or is
cancelled) with the cause still failing for ``open_after`` checks, its incident opens at the
first check after — not ``open_after`` checks later — and the window records
``incident_opened`` naming it; a cause that recovered meanwhile opens nothing. An incident
already open when a window starts goes on (planned work does not hide an outage it did not
cause).

**Taken over** (issue #15). A person who writes into an automatic incident owns it: the tracker
no longer resolves it, re-titles it nor writes public events into it; its cause's state changes
go on as internal events, and once the person resolves it the tracker forgets it (a new fault of
the cause opens a new incident). It learns of a takeover from the store: the open incidents are
read again every :data:`~monitor.alerting.quiet.REFRESH_EVERY` seconds of the check clock, and
the incident itself right before a public write. A written incident (a person opened it) is never
the tracker's at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from monitor.alerting.quiet import REFRESH_EVERY, Quiet, record_held
from monitor.config import IncidentRules, MonitorConfig
from monitor.impact import FAILING, Condition, describe, incident_impact, sample_critical
from monitor.store import (
    TARGET_COMPONENT,
    CheckRecord,
    HistoryRead,
    HistoryWrite,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
    Maintenance,
    Status,
    StoreError,
    component_key,
)

logger = logging.getLogger("monitor.incidents")

Key = tuple[str, str]
"""(target, service) of a component; the service is ``""`` for the target itself."""


@dataclass
class _Streak:
    """A possible cause's run of checks."""

    bad: int = 0
    good: int = 0
    worst: Status = Status.UNKNOWN
    """The worst status of the current bad run (the incident opens with it)."""
    last: Status = Status.UNKNOWN
    """The last status the cause was seen in (for ``state_change`` events)."""
    since: float | None = None
    """When the current bad run began (a window that ended during it held its incident)."""


@dataclass
class _Open:
    id: int
    components: dict[Key, IncidentComponent] = field(default_factory=dict)
    """In order: the cause first."""
    impact: Condition = Condition.NO_DATA
    taken: bool = False
    """A person took it over: theirs to word and resolve."""

    @property
    def listed(self) -> list[IncidentComponent]:
        return list(self.components.values())


OPEN_READ = 1000
"""Open incidents read at resume and at each look for takeovers."""


class IncidentTracker:
    def __init__(
        self,
        config: MonitorConfig,
        writer: HistoryWrite,
        *,
        reader: HistoryRead | None = None,
        quiet: Quiet | None = None,
    ) -> None:
        """``reader``: where takeovers are learnt (None: nobody takes anything over);
        ``quiet``: the maintenance windows (the alert engine's, read once for both; None: no
        window holds anything)."""
        self._config = config
        self._rules: IncidentRules = config.incidents
        self._writer = writer
        self._reader = reader
        self._quiet = quiet
        self._streaks: dict[Key, _Streak] = {}
        self._open: dict[Key, _Open] = {}
        """Open incidents by their cause."""
        self._critical: dict[Key, bool] = {}
        self._held: dict[Key, set[int]] = {}
        """The windows holding each cause's incident (``held_incident`` recorded once each)."""
        self._looked_at: float | None = None

    async def resume(self, reader: HistoryRead) -> None:
        """Pick up the incidents left open by a previous run: the automatic ones (a written
        incident is never the tracker's), knowing which a person took over."""
        for incident in await reader.incidents(state=IncidentState.OPEN, limit=OPEN_READ):
            if incident.origin is IncidentOrigin.WRITTEN:
                continue
            cause = (incident.target, incident.service)
            listed = incident.components or (  # an incident opened before #14 listed nothing
                IncidentComponent(incident.target, incident.service, incident.impact),
            )
            entry = _Open(incident.id, {(c.target, c.service): c for c in listed})
            entry.impact = incident_impact(entry.listed)
            entry.taken = incident.taken_over
            self._open[cause] = entry
            for component in listed:
                if component.critical:
                    self._critical[(component.target, component.service)] = True
            self._streak(cause).last = listed[0].status

    def open_causes(self) -> dict[Key, int]:
        """The causes with an open incident, and its id (what tests and logs ask)."""
        return {cause: entry.id for cause, entry in self._open.items()}

    def _streak(self, key: Key) -> _Streak:
        return self._streaks.setdefault(key, _Streak())

    async def observe(self, record: CheckRecord) -> None:
        target = record.target
        if self._quiet is not None:
            await self._quiet.refresh(record.at)
        await self._look_for_takeovers(record.at)
        for sample in record.services:
            said = sample_critical(sample)
            if said is not None:
                self._critical[(target, sample.service)] = said
        failing = any(s.status in FAILING for s in record.services)
        # What each possible cause showed in this check; the target as a cause shows nothing
        # when failing services explain its state (their incidents list it), and counts as clear.
        shown: dict[Key, Status] = {(target, s.service): s.status for s in record.services}
        explained = failing and record.status is not Status.UNREACHABLE
        shown[(target, TARGET_COMPONENT)] = Status.UNKNOWN if explained else record.status
        for cause, status in shown.items():
            self._count(
                cause, Status.HEALTHY if cause[1] == "" and explained else status, record.at
            )
        for cause, status in shown.items():
            entry = self._open.get(cause)
            if entry is None:
                await self._may_open(cause, record)
            elif (
                self._streaks[cause].good >= self._rules.resolve_after
                and not entry.taken
                and not await self._taken_now(cause, entry)
            ):
                await self._resolve(cause, entry, record)
            elif cause in self._open:  # not resolved by its taker just now
                await self._update(cause, entry, status, record)

    def _count(self, cause: Key, status: Status, at: float) -> None:
        streak = self._streak(cause)
        if status is Status.HEALTHY:
            streak.good += 1
            streak.bad = 0
            streak.worst = Status.UNKNOWN
            streak.since = None
        elif status in FAILING:
            if streak.bad == 0:
                streak.since = at
            streak.bad += 1
            streak.good = 0
            if status.severity > streak.worst.severity:
                streak.worst = status

    def _component(self, key: Key, status: Status) -> IncidentComponent:
        return IncidentComponent(key[0], key[1], status, self._critical.get(key, False))

    def _target_suffers(self, cause: Key, record: CheckRecord) -> bool:
        """Whether this check's target status belongs on a service cause's incident: not
        healthy, and not unreachable (a different cause: see the module's docstring)."""
        return cause[1] != TARGET_COMPONENT and record.status in (
            Status.DEGRADED,
            Status.UNHEALTHY,
        )

    async def _open_incident(self, cause: Key, record: CheckRecord) -> tuple[_Open, str]:
        streak = self._streaks[cause]
        target, service = cause
        entry = _Open(id=0, components={cause: self._component(cause, streak.worst)})
        if self._target_suffers(cause, record):
            key = (target, TARGET_COMPONENT)
            entry.components[key] = self._component(key, record.status)
        wording = describe(entry.listed, self._title)
        entry.impact = wording.impact
        entry.id = await self._writer.open_incident(
            target, service, streak.worst, record.at, wording.title, components=entry.listed
        )
        self._open[cause] = entry
        streak.last = streak.worst
        logger.warning(
            "incident opened: %s",
            wording.title,
            extra={
                "event": "incident_opened",
                "target": target,
                "service": service,
                "status": streak.worst.value,
                "impact": wording.impact.api.value,
                "incident": entry.id,
            },
        )
        return entry, wording.title

    # -- maintenance windows

    async def _may_open(self, cause: Key, record: CheckRecord) -> None:
        """A cause with no open incident: open one once it has failed ``open_after`` checks,
        unless a window holds it; once no window holds it any more, at once if still failing."""
        if self._streaks[cause].bad < self._rules.open_after:
            # (the windows are looked at only for a cause that failed long enough, or was held)
            if cause in self._held and self._window(cause, record.at) is None:
                del self._held[cause]
                logger.info(
                    "%s recovered during its maintenance: no incident",
                    component_key(*cause),
                    extra={"event": "incident_unheld", "component": component_key(*cause)},
                )
            return
        window = self._window(cause, record.at)
        if window is not None:
            await self._hold(cause, window, record.at)
            return
        entry, title = await self._open_incident(cause, record)
        for window_id in sorted(self._held.pop(cause, set()) | self._ended(cause, record.at)):
            await record_held(
                self._writer,
                window_id,
                "incident_opened",
                f"Incident #{entry.id} opened: {title} "
                f"({component_key(*cause)} still {self._streaks[cause].worst.value}).",
                record.at,
            )

    def _ended(self, cause: Key, now: float) -> set[int]:
        """The windows that covered the cause and ended during its current bad run: they held
        this incident, whether or not this process saw them do it (a leader that took over
        after the window started knows of no hold, and counts the run from its first check)."""
        since = self._streaks[cause].since
        if self._quiet is None or since is None:
            return set()
        return {
            window.id
            for window in self._quiet.windows
            if window.cancelled_at is None
            and since < window.ends_at <= now
            and window.covers(*cause, max(since, window.starts_at))
        }

    def _window(self, cause: Key, at: float) -> Maintenance | None:
        return None if self._quiet is None else self._quiet.window(*cause, at)

    async def _hold(self, cause: Key, window: Maintenance, at: float) -> None:
        held = self._held.setdefault(cause, set())
        if window.id in held:
            return
        held.add(window.id)
        marker = f" ({component_key(*cause)}) "
        if self._quiet is not None and await self._quiet.recorded(
            window.id, "held_incident", marker
        ):
            return  # a leader before this one recorded it (its memory is not this one's)
        streak = self._streaks[cause]
        text = (
            f"{self._title(*cause)}{marker}{streak.worst.value} for "
            f"{streak.bad} checks: its incident is held until the window ends."
        )
        logger.info(
            "incident held by maintenance window %d: %s",
            window.id,
            text,
            extra={
                "event": "incident_held",
                "maintenance": window.id,
                "component": component_key(*cause),
            },
        )
        await record_held(self._writer, window.id, "held_incident", text, at)

    # -- takeovers

    async def _look_for_takeovers(self, now: float) -> None:
        """Every REFRESH_EVERY of the check clock, the open incidents from the store: which
        were taken over, and which their takers resolved (forgotten: a new fault of the cause
        opens a new incident). A failed read changes nothing (logged)."""
        if self._reader is None or not self._open:
            return
        if self._looked_at is not None and now < self._looked_at + REFRESH_EVERY:
            return
        self._looked_at = now
        try:
            incidents = await self._reader.incidents(state=IncidentState.OPEN, limit=OPEN_READ)
        except StoreError as error:
            logger.warning(
                "could not read the open incidents: %s",
                type(error).__name__,
                extra={"event": "incidents_unread", "cause": type(error).__name__},
            )
            return
        taken = {incident.id for incident in incidents if incident.taken_over}
        still_open = {incident.id for incident in incidents}
        for cause, entry in list(self._open.items()):
            if entry.id in taken:
                self._taken(entry)
            elif entry.taken and entry.id not in still_open and len(incidents) < OPEN_READ:
                self._forget(cause, entry)

    async def _taken_now(self, cause: Key, entry: _Open) -> bool:
        """Right before a public write: whether a person took the incident over (or resolved
        it) since the last look. A failed read is taken as not (the store will fail the write
        that follows as well)."""
        if self._reader is None:
            return False
        try:
            incident = await self._reader.incident(entry.id)
        except StoreError:
            return False
        if incident is None or not incident.taken_over:
            return False
        self._taken(entry)
        if incident.state is IncidentState.RESOLVED:
            self._forget(cause, entry)
        return True

    def _taken(self, entry: _Open) -> None:
        if entry.taken:
            return
        entry.taken = True
        logger.info(
            "incident %d taken over: its cause's changes are internal from now on",
            entry.id,
            extra={"event": "incident_taken_over", "incident": entry.id},
        )

    def _forget(self, cause: Key, entry: _Open) -> None:
        logger.info(
            "incident %d resolved by its taker: forgotten",
            entry.id,
            extra={"event": "incident_forgotten", "incident": entry.id},
        )
        del self._open[cause]
        streak = self._streak(cause)
        streak.bad = 0
        streak.worst = Status.UNKNOWN
        streak.last = Status.HEALTHY

    # -- open incidents

    async def _update(self, cause: Key, entry: _Open, status: Status, record: CheckRecord) -> None:
        """Keep an open incident current: its cause's state changes on the timeline, its
        components' worst statuses, and its title when the impact grows. A taken-over one gets
        the state changes as internal events, and nothing else (its words are its taker's)."""
        streak = self._streaks[cause]
        if status is not Status.UNKNOWN and status is not streak.last:
            if not entry.taken:
                await self._taken_now(cause, entry)
            if cause not in self._open:
                return  # its taker resolved it
            streak.last = status
            await self._writer.add_event(
                entry.id,
                IncidentEvent(
                    at=record.at,
                    kind="state_change",
                    status=status,
                    public=not entry.taken,
                    text=f"{self._title(*cause)} is now {status.value}.",
                ),
            )
        if entry.taken:
            return
        seen: dict[Key, Status] = {cause: status} if status is not Status.UNKNOWN else {}
        if self._target_suffers(cause, record):
            seen[(cause[0], TARGET_COMPONENT)] = record.status
        changed = False
        for key, now in seen.items():
            known = entry.components.get(key)
            critical = self._critical.get(key, False)
            if now in FAILING and (known is None or now.severity > known.status.severity):
                entry.components[key] = self._component(key, now)
                changed = True
            elif known is not None and critical and not known.critical:  # learnt it since
                entry.components[key] = self._component(key, known.status)
                changed = True
        if not changed:
            return
        await self._writer.set_incident_components(entry.id, entry.listed, record.at)
        wording = describe(entry.listed, self._title)
        if wording.impact.value > entry.impact.value:
            entry.impact = wording.impact
            worst = max((c.status for c in entry.listed), key=lambda s: s.severity)
            await self._writer.retitle_incident(entry.id, wording.title, worst)
            logger.warning(
                "incident retitled: %s",
                wording.title,
                extra={
                    "event": "incident_retitled",
                    "incident": entry.id,
                    "impact": wording.impact.api.value,
                },
            )

    async def _resolve(self, cause: Key, entry: _Open, record: CheckRecord) -> None:
        name = self._title(*cause)
        text = (
            f"{name} is operating normally."
            if record.status is Status.HEALTHY or cause[1] != TARGET_COMPONENT
            else f"{name} no longer fails on its own; what remains is another incident's cause."
        )
        await self._writer.resolve_incident(entry.id, record.at, text)
        logger.info(
            "incident resolved",
            extra={"event": "incident_resolved", "incident": entry.id},
        )
        del self._open[cause]
        self._streaks[cause].last = Status.HEALTHY

    def _title(self, target: str, service: str) -> str:
        try:
            configured = self._config.target(target)
        except KeyError:
            if not service:  # a [[checks]] entry (issue #16): its own title
                try:
                    return self._config.check(target).title
                except KeyError:
                    return target
            return service or target
        return (
            configured.title if service == TARGET_COMPONENT else configured.service_title(service)
        )
