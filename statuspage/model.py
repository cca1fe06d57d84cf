"""The public view of the monitor's history: only what end users may see, as plain values.

Built from store values by pure functions (no I/O here; :mod:`statuspage.source` reads the store).
What is public: display names, groups, statuses, times, uptime and response-time figures, and the
text of incident notes marked public. What never is: error strings, hosts, breaker and pool
details, actors, non-public events, and the incident titles and event texts the daemon writes
(their public wording is generated here from the state they record).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from monitor.store.models import (
    TARGET_COMPONENT,
    BarSeries,
    Component,
    Incident,
    IncidentEvent,
    IncidentState,
    LatencyPoint,
    Status,
)
from statuspage.text import NOTE_LIMIT, clean
from statuspage.vocabulary import Condition, IncidentStatus, Indicator

RECENT_DAYS = 14
"""Resolved incidents stay on the front page this long."""


@functools.lru_cache(maxsize=4096)  # the same components and groups on every render
def opaque_id(*parts: str) -> str:
    """A stable, URL-safe id in Statuspage's style (12 lowercase letters and digits)."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).digest()
    return base64.b32encode(digest).decode().lower()[:12]


@functools.lru_cache(maxsize=4096)
def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80]


@dataclass(frozen=True, slots=True)
class PageInfo:
    name: str
    url: str
    """The public base URL, without a trailing slash (links in the JSON and the feed)."""

    @property
    def id(self) -> str:
        return opaque_id("page", self.url)


@dataclass(frozen=True, slots=True)
class ComponentView:
    id: str
    slug: str
    target: str
    service: str
    name: str
    group_id: str | None
    position: int
    """1-based, within its group."""
    condition: Condition
    since: float | None
    """When the component entered its current condition (None without data)."""

    @property
    def public_key(self) -> str:
        """``TARGET`` for a target itself, ``TARGET/SERVICE`` for one of its services."""
        if self.service == TARGET_COMPONENT:
            return self.target
        return f"{self.target}/{self.service}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.service)

    @property
    def is_target(self) -> bool:
        return self.service == TARGET_COMPONENT


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str | None
    """None for components the catalogue puts in no group."""
    name: str
    position: int
    components: tuple[ComponentView, ...]

    @property
    def condition(self) -> Condition:
        return Condition.worst([c.condition for c in self.components])

    @property
    def since(self) -> float | None:
        times = [c.since for c in self.components if c.since is not None and c.condition.known]
        return max(times, default=None)


@dataclass(frozen=True, slots=True)
class AffectedView:
    component_id: str
    name: str
    old: Condition
    new: Condition


@dataclass(frozen=True, slots=True)
class UpdateView:
    id: str
    status: IncidentStatus
    body: str
    at: float
    affected: tuple[AffectedView, ...]


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    name: str
    status: IncidentStatus
    impact: Indicator
    component: ComponentView | None
    opened_at: float
    updated_at: float
    resolved_at: float | None
    monitoring_at: float | None
    updates: tuple[UpdateView, ...]
    """Public updates only, newest first (as Statuspage lists them)."""

    @property
    def open(self) -> bool:
        return self.status is not IncidentStatus.RESOLVED


@dataclass(frozen=True, slots=True)
class Board:
    """Everything but the long history: enough for the JSON, the feed and the banner."""

    page: PageInfo
    now: float
    data_at: float | None
    """Time of the newest check of any target (None: nothing checked yet)."""
    groups: tuple[GroupView, ...]
    incidents: tuple[IncidentView, ...]
    """Open ones first, then the most recently opened."""
    stale_after: float

    @property
    def components(self) -> tuple[ComponentView, ...]:
        return tuple(c for g in self.groups for c in g.components)

    @property
    def condition(self) -> Condition:
        return Condition.worst([c.condition for c in self.components])

    @property
    def empty(self) -> bool:
        return not self.condition.known

    @property
    def stale(self) -> bool:
        return self.data_at is not None and self.now - self.data_at > self.stale_after

    @property
    def updated_at(self) -> float:
        times = [t for t in (self.data_at, *(i.updated_at for i in self.incidents)) if t]
        return max(times, default=self.now)

    @property
    def open_incidents(self) -> tuple[IncidentView, ...]:
        return tuple(i for i in self.incidents if i.open)

    @property
    def recent_incidents(self) -> tuple[IncidentView, ...]:
        """Resolved incidents of the last :data:`RECENT_DAYS` days, newest first."""
        cutoff = self.now - RECENT_DAYS * 86400
        return tuple(i for i in self.incidents if not i.open and i.updated_at >= cutoff)

    def component(self, key: str) -> ComponentView | GroupView | None:
        """A component or group by id; a component by its key (``TARGET`` or
        ``TARGET/SERVICE``, as the CLI, the TUI and alerts name it) or by the slug of its name."""
        for group in self.groups:
            if group.id is not None and group.id == key:
                return group
            for component in group.components:
                if key in (component.id, component.slug, component.public_key):
                    return component
        return None


class DayView(NamedTuple):
    """One segment of a 90-day bar."""

    start: float
    condition: Condition
    """The worst state of the day (NO_DATA when nothing was checked)."""
    uptime: float | None


def day_view(start: int, checks: int, up: int, worst: int) -> DayView:
    """A day of a :class:`~monitor.store.models.BarSeries` (``worst`` a severity)."""
    if not checks:
        return DayView(float(start), Condition.NO_DATA, None)
    return DayView(float(start), Condition.of(Status.from_severity(worst)), 100.0 * up / checks)


@dataclass(frozen=True, slots=True)
class ComponentHistory:
    days: BarSeries
    """The daily figures, oldest first (columns: one list per figure, not an object per day)."""
    uptime: float | None
    """Over all days shown (the 90-day figure)."""
    latency: tuple[LatencyPoint, ...]
    """Hourly response times over the last 24 h; empty for services."""
    latency_start: float
    """Start of the first hour of the 24 h window."""


# -- builders -------------------------------------------------------------------------------------


def build_groups(
    catalogue: Iterable[Component],
    states: Mapping[tuple[str, str], tuple[Status, float | None]],
) -> tuple[GroupView, ...]:
    """Components grouped as the catalogue says, each with its public condition and since when.

    ``states`` maps (target, service) to the status and its start; missing means no data.
    """
    grouped: dict[str, list[Component]] = {}
    for component in sorted(catalogue, key=lambda c: c.position):
        grouped.setdefault(clean(component.group), []).append(component)
    groups = []
    slugs: set[str] = set()
    for number, (name, members) in enumerate(grouped.items(), start=1):
        gid = opaque_id("group", name) if name else None
        views = []
        for position, member in enumerate(members, start=1):
            status, since = states.get((member.target, member.service), (Status.UNKNOWN, None))
            display = clean(member.display_name) or clean(member.target) or "Unnamed component"
            slug = slugify(display)
            if not slug or slug in slugs:  # first come keeps a slug; the id always works
                slug = ""
            slugs.add(slug)
            views.append(
                ComponentView(
                    id=opaque_id("component", member.target, member.service),
                    slug=slug,
                    target=member.target,
                    service=member.service,
                    name=display,
                    group_id=gid,
                    position=position,
                    condition=Condition.of(status),
                    since=since if status is not Status.UNKNOWN else None,
                )
            )
        groups.append(GroupView(gid, name, number, tuple(views)))
    return tuple(groups)


def build_history(
    days: BarSeries, latency: list[LatencyPoint], latency_start: float
) -> ComponentHistory:
    return ComponentHistory(days, days.uptime, tuple(latency), latency_start)


# -- incidents ------------------------------------------------------------------------------------

_MACHINE_KINDS = frozenset({"opened", "state_change", "resolved"})
_PUBLIC_KINDS = _MACHINE_KINDS | {"note"}
_IMPACT_NAME = {
    Condition.DEGRADED: "Degraded performance",
    Condition.PARTIAL: "Partial outage",
    Condition.MAJOR: "Major outage",
}
_STATE_SENTENCE = {
    Condition.DEGRADED: "{name} is running with degraded performance.",
    Condition.PARTIAL: "{name} is partly unavailable (partial outage).",
    Condition.MAJOR: "{name} is unavailable (major outage).",
    Condition.OPERATIONAL: "{name} is working again; we are monitoring the recovery.",
    Condition.NO_DATA: "We have lost sight of {name} and are checking it.",
}


def build_incident(
    incident: Incident, components: Mapping[tuple[str, str], ComponentView]
) -> IncidentView:
    component = components.get((incident.target, incident.service))
    name = component.name if component is not None else _orphan_name(incident, components)
    impact = Condition.of(incident.impact)
    status = IncidentStatus.INVESTIGATING
    condition = Condition.OPERATIONAL
    monitoring_at: float | None = None
    updates = []
    for index, event in enumerate(incident.events):
        old_condition = condition
        if event.kind in ("opened", "state_change") and event.status is not None:
            condition = Condition.of(event.status)
            if condition is Condition.OPERATIONAL:
                if status is not IncidentStatus.MONITORING:
                    monitoring_at = event.at
                status = IncidentStatus.MONITORING
            else:
                status = IncidentStatus.INVESTIGATING
        elif event.kind == "resolved":
            condition = Condition.OPERATIONAL
            status = IncidentStatus.RESOLVED
        if not (event.public and event.kind in _PUBLIC_KINDS):
            continue
        body = _public_body(event, name, condition)
        if not body:
            continue
        affected: tuple[AffectedView, ...] = ()
        if component is not None and event.kind in _MACHINE_KINDS and condition != old_condition:
            affected = (AffectedView(component.id, name, old_condition, condition),)
        updates.append(
            UpdateView(
                id=opaque_id("update", str(incident.id), str(index)),
                status=status,
                body=body,
                at=event.at,
                affected=affected,
            )
        )
    if incident.state is IncidentState.RESOLVED:
        status = IncidentStatus.RESOLVED
    elif status is IncidentStatus.RESOLVED:  # resolved event without the state: trust the state
        status = IncidentStatus.MONITORING
    return IncidentView(
        id=incident.id,
        name=f"{_IMPACT_NAME.get(impact, 'Problem')} of {name}",
        status=status,
        impact=impact.indicator,
        component=component,
        opened_at=incident.opened_at,
        updated_at=incident.updated_at,
        resolved_at=incident.resolved_at,
        monitoring_at=monitoring_at,
        updates=tuple(reversed(updates)),
    )


def _public_body(event: IncidentEvent, name: str, condition: Condition) -> str:
    if event.kind == "note":
        return clean(event.text, NOTE_LIMIT)
    if event.kind == "resolved":
        return f"This incident has been resolved; {name} is operating normally."
    sentence = _STATE_SENTENCE[condition].format(name=name)
    sentence = sentence[:1].upper() + sentence[1:]
    if event.kind == "opened":
        return f"We are investigating a problem: {sentence}"
    return sentence


def _orphan_name(incident: Incident, components: Mapping[tuple[str, str], ComponentView]) -> str:
    """A component no longer in the catalogue: its target's name, never a raw service name."""
    target = components.get((incident.target, TARGET_COMPONENT))
    owner = target.name if target is not None else (clean(incident.target) or "QuestCity")
    return owner if incident.service == TARGET_COMPONENT else f"a service of {owner}"
