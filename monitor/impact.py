"""How bad it is: the one rule behind every impact word the monitor and the status page show.

A component's **condition** comes from its status and whether it is critical:

==============  ==========================  ==========================
status          condition                   condition when critical
==============  ==========================  ==========================
healthy         ``operational``             ``operational``
degraded        ``degraded_performance``    ``degraded_performance``
unhealthy       ``partial_outage``          ``major_outage``
unreachable     ``major_outage``            ``major_outage``
unknown         no data (not published)     no data
==============  ==========================  ==========================

and a condition's Statuspage indicator: operational ``none``, degraded_performance ``minor``,
partial_outage ``major``, major_outage ``critical``.

A service the backend marks ``critical`` (the database) is what the backend cannot serve
without, so it down is a major outage, not a partial one; a target that is unhealthy *because* a
critical service of it is down is a major outage too (its own status says only ``unhealthy``).
Anything unreachable is a major outage: nothing behind it answers.

An **incident's impact** is the worst condition of the components it affects, and its Statuspage
indicator (``none``/``minor``/``major``/``critical``) is that condition's. Its **title** and
**body** are worded from those same values by :func:`describe`, so the word in the title is
always the word of one of the components the body lists — they cannot disagree.

This module imports only the store's values and :mod:`monitor.i18n` (its words are marked for
translation; :func:`describe` and :func:`sentence` word them with a language's gettext, English
by default, which is what the daemon stores): the status page loads it (it may load nothing of
the daemon), and so do the daemon, the TUI and the CLI.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monitor.i18n import N_, identity
from monitor.store.models import TARGET_COMPONENT, IncidentComponent, ServiceSample, Status

Gettext = Callable[[str], str]
"""A language's gettext (:func:`monitor.i18n.translations`'s ``.gettext``); the default,
:func:`monitor.i18n.identity`, is English: the daemon stores its titles and texts in English
and the status page words them again in its reader's language."""


class ComponentStatus(enum.StrEnum):
    """Statuspage's component status values."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"
    """A component in an active maintenance window (issue #15), whatever its checks say."""


class Indicator(enum.StrEnum):
    """Statuspage's page and incident impact values."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Condition(enum.Enum):
    """A component's (or an incident's, a day's, the page's) state as people are told it."""

    NO_DATA = 0
    OPERATIONAL = 1
    DEGRADED = 2
    PARTIAL = 3
    MAJOR = 4

    @classmethod
    def of(cls, status: Status, *, critical: bool = False) -> Condition:
        """THE rule: a critical component unhealthy is a major outage, anything unreachable is."""
        if critical and status is Status.UNHEALTHY:
            return cls.MAJOR
        return _FROM_STATUS[status]

    @classmethod
    def worst(cls, conditions: Iterable[Condition]) -> Condition:
        return max(conditions, key=lambda c: c.value, default=cls.NO_DATA)

    @property
    def known(self) -> bool:
        return self is not Condition.NO_DATA

    @property
    def api(self) -> ComponentStatus:
        """The Statuspage value; only for known conditions (unknown ones are not published)."""
        if self is Condition.NO_DATA:
            raise ValueError("a component without data has no Statuspage status")
        return _API[self]

    @property
    def indicator(self) -> Indicator:
        return _INDICATOR[self]

    @property
    def word(self) -> str:
        """The status word shown beside a component, and an incident title's ("Major outage"),
        in English: a reader's language translates it (it is in the catalogues)."""
        return _WORD[self]

    @property
    def banner(self) -> str:
        """The page's headline when this is the worst condition of any component (English, in
        the catalogues like :attr:`word`)."""
        return _BANNER[self]

    @property
    def css(self) -> str:
        """A short stable name (the page's CSS class; colours always come with a word)."""
        return _CSS[self]


_FROM_STATUS = {
    Status.HEALTHY: Condition.OPERATIONAL,
    Status.DEGRADED: Condition.DEGRADED,
    Status.UNHEALTHY: Condition.PARTIAL,
    Status.UNREACHABLE: Condition.MAJOR,
    Status.UNKNOWN: Condition.NO_DATA,
}
_API = {
    Condition.OPERATIONAL: ComponentStatus.OPERATIONAL,
    Condition.DEGRADED: ComponentStatus.DEGRADED_PERFORMANCE,
    Condition.PARTIAL: ComponentStatus.PARTIAL_OUTAGE,
    Condition.MAJOR: ComponentStatus.MAJOR_OUTAGE,
}
_INDICATOR = {
    Condition.NO_DATA: Indicator.NONE,
    Condition.OPERATIONAL: Indicator.NONE,
    Condition.DEGRADED: Indicator.MINOR,
    Condition.PARTIAL: Indicator.MAJOR,
    Condition.MAJOR: Indicator.CRITICAL,
}
_WORD = {
    Condition.NO_DATA: N_("No data"),
    Condition.OPERATIONAL: N_("Operational"),
    Condition.DEGRADED: N_("Degraded performance"),
    Condition.PARTIAL: N_("Partial outage"),
    Condition.MAJOR: N_("Major outage"),
}
_BANNER = {
    Condition.NO_DATA: N_("No data yet"),
    Condition.OPERATIONAL: N_("All systems operational"),
    Condition.DEGRADED: N_("Degraded performance"),
    Condition.PARTIAL: N_("Partial outage"),
    Condition.MAJOR: N_("Major outage"),
}
_CSS = {
    Condition.NO_DATA: "none",
    Condition.OPERATIONAL: "ok",
    Condition.DEGRADED: "degraded",
    Condition.PARTIAL: "partial",
    Condition.MAJOR: "major",
}

FAILING = frozenset({Status.DEGRADED, Status.UNHEALTHY, Status.UNREACHABLE})
"""Statuses of a component that is not serving as it should (unknown is no news, not failing)."""


def sample_critical(sample: ServiceSample) -> bool | None:
    """What a sample says of its service's criticality: None when it says nothing (an answer
    from ``/`` without the token), so a remembered ``True`` is not forgotten."""
    value = sample.details.get("critical")
    return value if isinstance(value, bool) else None


def critical_down(services: Iterable[tuple[Status, bool]]) -> bool:
    """Whether a target's services, as (status, critical) pairs, include a critical one that is
    down: then the target, unhealthy *because* of it, is judged as critical too
    (``Condition.of(target_status, critical=critical_down(...))``)."""
    return any(critical and status in _DOWN for status, critical in services)


_DOWN = frozenset({Status.UNHEALTHY, Status.UNREACHABLE})


def sentence(name: str, condition: Condition, _: Gettext = identity) -> str:
    """What a component's change to ``condition`` tells people, with the condition's own word
    ("Photos is partly unavailable (partial outage)."), in the language of ``_``."""
    if condition is Condition.DEGRADED:
        text = _("%(name)s is running with degraded performance.")
    elif condition is Condition.PARTIAL:
        text = _("%(name)s is partly unavailable (partial outage).")
    elif condition is Condition.MAJOR:
        text = _("%(name)s is unavailable (major outage).")
    elif condition is Condition.OPERATIONAL:
        text = _("%(name)s is working again; we are monitoring the recovery.")
    else:
        text = _("We have lost sight of %(name)s and are checking it.")
    return text % {"name": name}


def worst_status(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: s.severity, default=Status.UNKNOWN)


# -- incidents ------------------------------------------------------------------------------------


def incident_conditions(components: Sequence[IncidentComponent]) -> list[Condition]:
    """Each affected component's condition, in order (the cause first).

    A target listed in an incident whose cause is a critical service of it is unhealthy
    *because* that service is down: a major outage, like the service."""
    if not components:
        return []
    cause = components[0]
    critical_cause = cause.critical and cause.service != TARGET_COMPONENT
    conditions = [Condition.of(cause.status, critical=cause.critical)]
    for component in components[1:]:
        by_cause = (
            critical_cause
            and component.service == TARGET_COMPONENT
            and component.target == cause.target
        )
        conditions.append(Condition.of(component.status, critical=component.critical or by_cause))
    return conditions


def incident_impact(components: Sequence[IncidentComponent]) -> Condition:
    """The incident's impact: its worst component's condition (NO_DATA when it lists none)."""
    return Condition.worst(incident_conditions(components))


@dataclass(frozen=True, slots=True)
class Affected:
    """One affected component as people are told it."""

    target: str
    service: str
    name: str
    condition: Condition


@dataclass(frozen=True, slots=True)
class Wording:
    """An incident's impact with its title and body, all three from the same values."""

    impact: Condition
    affected: tuple[Affected, ...]
    title: str
    body: str


def describe(
    components: Sequence[IncidentComponent],
    name: Callable[[str, str], str],
    _: Gettext = identity,
) -> Wording:
    """Title and body of an incident from its affected components (cause first, each with its
    worst status) and a function giving a component's display name from (target, service), in
    the language of ``_`` (English by default: what the daemon stores).

    ``Major outage: Database`` / ``Database is unavailable (major outage). Also affected:
    QuestCity API (major outage).`` The title's word is the impact, the worst of the words the
    body says, so the two can never disagree."""
    conditions = incident_conditions(components)
    affected = tuple(
        Affected(c.target, c.service, name(c.target, c.service), condition)
        for c, condition in zip(components, conditions, strict=True)
    )
    impact = Condition.worst(conditions)
    if not affected:
        return Wording(impact, (), _("Problem"), _("We are investigating a problem."))
    cause, others = affected[0], affected[1:]
    word = _(impact.word) if impact.value > Condition.OPERATIONAL.value else _("Problem")
    body = sentence(cause.name, cause.condition, _)
    if others:
        listed = ", ".join(
            _("%(name)s (%(condition)s)")
            % {"name": a.name, "condition": _(a.condition.word).lower()}
            for a in others
        )
        body = _("%(sentence)s Also affected: %(listed)s.") % {"sentence": body, "listed": listed}
    title = _("%(impact)s: %(name)s") % {"impact": word, "name": cause.name}
    return Wording(impact, affected, title, body)
