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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

from monitor.figures import PAGE_WINDOW, Uptime, uptime
from monitor.impact import ComponentStatus, critical_down
from monitor.store.models import (
    TARGET_COMPONENT,
    BarSeries,
    Component,
    LatencyPoint,
    Status,
)
from statuspage.text import clean
from statuspage.vocabulary import Condition, IncidentStatus, Indicator

if TYPE_CHECKING:
    from statuspage.maintenance import MaintenanceView

RECENT_DAYS = 14
"""Resolved incidents stay on the front page this long."""
POSTMORTEM_LIMIT = 50_000
"""Characters of a postmortem shown (a long one is cut, never the page)."""


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
    refresh: int = 0
    """Seconds after which a page without a form reloads itself (``[page] refresh``; 0: never)."""
    subscribe: bool = False
    """Whether players may subscribe (``[subscriptions] enabled``): pages link ``/subscribe``."""

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
    critical: bool = False
    """The catalogue's flag: the backend cannot serve without it (its own, not its target's)."""
    maintenance: bool = False
    """In an active maintenance window: it reads ``under_maintenance`` whatever ``condition``
    (what its checks say, raised by an open written incident) is."""

    @property
    def published(self) -> bool:
        """Shown in the JSON (a component never checked is not, unless it is under maintenance)."""
        return self.maintenance or self.condition.known

    @property
    def api(self) -> ComponentStatus:
        """Statuspage's status (only for :attr:`published` components)."""
        return ComponentStatus.UNDER_MAINTENANCE if self.maintenance else self.condition.api

    @property
    def counted(self) -> Condition:
        """What it adds to its group's and the page's condition: nothing while under maintenance
        (planned work is not an outage; the page says it in its own section)."""
        return Condition.NO_DATA if self.maintenance else self.condition

    @property
    def css(self) -> str:
        return "maintenance" if self.maintenance else self.condition.css

    @property
    def badge_key(self) -> str:
        """The name its badge is served under (``/badge/{badge_key}.svg``)."""
        return self.slug or self.id

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
        return Condition.worst([c.counted for c in self.components])

    @property
    def maintenance(self) -> bool:
        """Every published member is under maintenance (the group reads ``under_maintenance``)."""
        published = [c for c in self.components if c.published]
        return bool(published) and all(c.maintenance for c in published)

    @property
    def api(self) -> ComponentStatus:
        return ComponentStatus.UNDER_MAINTENANCE if self.maintenance else self.condition.api

    @property
    def css(self) -> str:
        return "maintenance" if self.maintenance else self.condition.css

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
class IncidentComponentView:
    """A component an incident affects, with its impact during the incident."""

    name: str
    condition: Condition
    """From the worst status it had during the incident (:mod:`monitor.impact`'s rule)."""
    view: ComponentView | None
    """The component as it is now; None when the catalogue no longer has it."""


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    name: str
    status: IncidentStatus
    impact: Indicator
    component: ComponentView | None
    """The cause, as it is now."""
    components: tuple[IncidentComponentView, ...]
    """Every component the incident affects, the cause first."""
    opened_at: float
    updated_at: float
    resolved_at: float | None
    monitoring_at: float | None
    updates: tuple[UpdateView, ...]
    """Public updates only, newest first (as Statuspage lists them); a postmortem is the newest,
    with the ``postmortem`` status."""
    written: bool = False
    """Written by a person: opened by one, or an automatic incident one took over."""
    postmortem: str | None = None
    postmortem_at: float | None = None

    @property
    def open(self) -> bool:
        return self.status not in (IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM)

    @property
    def latest(self) -> UpdateView | None:
        """The newest update that is not the postmortem (what a card quotes)."""
        return next((u for u in self.updates if u.status is not IncidentStatus.POSTMORTEM), None)

    @property
    def timeline(self) -> tuple[UpdateView, ...]:
        """The updates without the postmortem (the incident page shows it in its own section)."""
        return tuple(u for u in self.updates if u.status is not IncidentStatus.POSTMORTEM)

    def duration(self, now: float) -> float:
        """How long it lasted (resolved) or has been going on (open), in seconds."""
        end = self.resolved_at if self.resolved_at is not None and not self.open else now
        return max(0.0, end - self.opened_at)


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
    uptimes: Mapping[str, Uptime] | None = None
    """Each component's 90-day uptime by id, for the JSON (:meth:`with_uptimes`); None: not
    read (the figures live in the long history, read on first need)."""
    maintenances: tuple[MaintenanceView, ...] = ()
    """Upcoming, active and recently ended (or cancelled) maintenance windows, by start."""
    private: frozenset[tuple[str, str]] = frozenset()
    """The catalogue's private components (#16), left out of everything above; an incident read
    on its own is shown only with the public ones (:mod:`statuspage.source`)."""

    def with_uptimes(self, history: Mapping[str, ComponentHistory]) -> Board:
        """This board with the figures of ``history`` (the same the HTML shows)."""
        return replace(self, uptimes={key: h.figure for key, h in history.items()})

    @property
    def components(self) -> tuple[ComponentView, ...]:
        return tuple(c for g in self.groups for c in g.components)

    @property
    def condition(self) -> Condition:
        """The worst condition of the components not under maintenance."""
        return Condition.worst([c.counted for c in self.components])

    @property
    def empty(self) -> bool:
        return not any(c.published for c in self.components)

    @property
    def active_maintenances(self) -> tuple[MaintenanceView, ...]:
        return tuple(m for m in self.maintenances if m.active)

    @property
    def upcoming_maintenances(self) -> tuple[MaintenanceView, ...]:
        return tuple(m for m in self.maintenances if m.upcoming)

    @property
    def turns_at(self) -> float | None:
        """The next moment this board changes by the clock alone, with nothing written: a
        window starting or ending (its components' state, its status)."""
        times = [
            t
            for m in self.maintenances
            if not m.cancelled
            for t in (m.scheduled_for, m.scheduled_until)
            if t > self.now
        ]
        return min(times, default=None)

    @property
    def stale(self) -> bool:
        return self.data_at is not None and self.now - self.data_at > self.stale_after

    @property
    def updated_at(self) -> float:
        times = [
            t
            for t in (
                self.data_at,
                *(i.updated_at for i in self.incidents),
                *(m.updated_at for m in self.maintenances),
            )
            if t
        ]
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


def day_view(start: int, checks: int, up: int, worst: int, critical: bool = False) -> DayView:
    """A day of a :class:`~monitor.store.models.BarSeries` (``worst`` a severity), judged by
    :meth:`Condition.of` like the component list: ``critical`` as :func:`critical_days` says."""
    if not checks:
        return DayView(float(start), Condition.NO_DATA, None)
    condition = Condition.of(Status.from_severity(worst), critical=critical)
    return DayView(float(start), condition, 100.0 * up / checks)


_DOWN_SEVERITY = min(Status.UNHEALTHY.severity, Status.UNREACHABLE.severity)


def critical_days(
    view: ComponentView, days: BarSeries, services: Iterable[tuple[BarSeries, bool]] = ()
) -> tuple[bool, ...]:
    """Per day of ``days``, whether the day is judged as critical (:func:`monitor.impact.
    critical_down`'s rule at a day's grain, so a bar never says less than the list beside it):
    every day of a critical component; for a target, the days a critical service of it (its
    series and flag in ``services``) was down. A day has no time within it: the target's worst
    and the service's down are assumed to coincide (the backend is unhealthy only when a
    critical dependency is down). Empty when no day is critical (the common case: cheap)."""
    if view.critical:
        return (True,) * len(days)
    if not view.is_target:
        return ()
    flags = [False] * len(days)
    for series, critical in services:
        if not critical or series.first != days.first or series.length != days.length:
            continue
        for at, worst in enumerate(series.worst[: len(flags)]):
            flags[at] = flags[at] or worst >= _DOWN_SEVERITY
    return tuple(flags) if any(flags) else ()


@dataclass(frozen=True, slots=True)
class ComponentHistory:
    days: BarSeries
    """The daily figures, oldest first (columns: one list per figure, not an object per day)."""
    figure: Uptime
    """Uptime over the days shown (:data:`monitor.figures.PAGE_WINDOW`, the 90-day figure), by
    the same function as the TUI's and the JSON's."""
    latency: tuple[LatencyPoint, ...]
    """Hourly response times over the last 24 h; empty for services, and with fewer than two
    hours (one dot is no chart)."""
    latency_start: float
    """Start of the first hour of the 24 h window."""
    critical: tuple[bool, ...] = ()
    """Per day, whether it is judged as critical (:func:`critical_days`; empty: none is)."""
    since: float | None = None
    """Start of the first checked day when that is later than the bar's first day (a young
    history: the page says "since …", not "90 days ago"); None for a full or an empty bar."""

    @property
    def uptime(self) -> float | None:
        """The 90-day figure as shown (rounded down to two decimals; None: no data)."""
        return self.figure.value


# -- builders -------------------------------------------------------------------------------------


def build_groups(
    catalogue: Iterable[Component],
    states: Mapping[tuple[str, str], tuple[Status, float | None]],
) -> tuple[GroupView, ...]:
    """Components grouped as the catalogue says, each with its public condition and since when.

    ``states`` maps (target, service) to the status and its start; missing means no data.
    """
    grouped: dict[str, list[Component]] = {}
    listed = sorted(catalogue, key=lambda c: c.position)
    for component in listed:
        grouped.setdefault(clean(component.group), []).append(component)
    services: dict[str, list[tuple[Status, bool]]] = {}  # a target unhealthy *because* of one
    for member in listed:
        state = states.get((member.target, member.service))
        if member.service != TARGET_COMPONENT and state is not None:
            services.setdefault(member.target, []).append((state[0], member.critical))
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
                    condition=Condition.of(
                        status,
                        critical=member.critical
                        or (
                            member.service == TARGET_COMPONENT
                            and critical_down(services.get(member.target, ()))
                        ),
                    ),
                    since=since if status is not Status.UNKNOWN else None,
                    critical=member.critical,
                )
            )
        groups.append(GroupView(gid, name, number, tuple(views)))
    return tuple(groups)


def build_history(
    days: BarSeries,
    latency: list[LatencyPoint],
    latency_start: float,
    critical: tuple[bool, ...] = (),
) -> ComponentHistory:
    # The window ends in the bars' last day (today): the figure is exactly the bars' sum.
    today = days.first + max(len(days) - 1, 0) * days.length
    figure = uptime(days, PAGE_WINDOW, today) if len(days) else Uptime()
    first = next((at for at, checks in enumerate(days.checks) if checks), 0)
    since = float(days.first + first * days.length) if first else None
    points = tuple(latency) if len(latency) >= 2 else ()
    return ComponentHistory(days, figure, points, latency_start, critical, since)
