"""Public incidents from the store's: the machine's, worded by :mod:`monitor.impact`'s one rule,
and the ones people write (issue #15), as written.

What is public of an incident: its components and their impact, the machine's public events
worded here (never the daemon's own title and texts, which may name hosts), public notes, a
person's updates and postmortem as written. Never: actors, private notes, breaker resets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitor.i18n import Gettext, Phrase, identity
from monitor.impact import describe, sentence
from monitor.store.models import (
    PHASES,
    TARGET_COMPONENT,
    Incident,
    IncidentComponent,
    IncidentEvent,
    IncidentOrigin,
    IncidentState,
)
from statuspage.model import (
    POSTMORTEM_LIMIT,
    AffectedView,
    ComponentView,
    IncidentComponentView,
    IncidentView,
    UpdateView,
    opaque_id,
)
from statuspage.text import NOTE_LIMIT, clean
from statuspage.vocabulary import Condition, IncidentStatus

_MACHINE_KINDS = frozenset({"opened", "state_change", "resolved"})
_PUBLIC_KINDS = _MACHINE_KINDS | {"note"}


def build_incident(
    incident: Incident, components: Mapping[tuple[str, str], ComponentView]
) -> IncidentView:
    """The public incident. An automatic one: its name and every body worded by
    :func:`monitor.impact.describe` from the components it lists (the daemon's own title and
    texts are never shown). A written one: its title and its person's updates as written, its
    status the phase they set. An automatic one a person took over: the machine's public
    updates until the ``takeover``, then the person's (the machine's later changes stay
    internal)."""
    component = components.get((incident.target, incident.service))
    listed = incident.components or (  # an incident written before #14 listed nothing
        IncidentComponent(incident.target, incident.service, incident.impact),
    )

    def name_of(target: str, service: str) -> str:
        view = components.get((target, service))
        return view.name if view is not None else _orphan_name(target, service, components)

    wording = describe(listed, name_of)

    def worded(_: Gettext) -> str:  # the body in another language (monitor.i18n.Phrase)
        return wording.body if _ is identity else describe(listed, name_of, _).body

    written = incident.origin is IncidentOrigin.WRITTEN
    title = Phrase(wording.title, lambda _: describe(listed, name_of, _).title)
    name = (clean(incident.title) or title) if written else title
    cause_name = wording.affected[0].name
    cause_critical = listed[0].critical
    person = written  # from when on a person speaks for the incident
    status = IncidentStatus.INVESTIGATING
    condition = Condition.OPERATIONAL
    monitoring_at: float | None = None
    updates = []
    for index, event in enumerate(incident.events):
        if event.kind == "takeover":
            person = True
            continue
        if event.kind == "update" and event.public:
            status = _phase(event.phase, status)
            if status is IncidentStatus.MONITORING and monitoring_at is None:
                monitoring_at = event.at
            body = clean(event.text, NOTE_LIMIT)
            if body:
                uid = opaque_id("update", str(incident.id), str(index))
                updates.append(UpdateView(uid, status, body, event.at, ()))
            continue
        if person and event.kind in _MACHINE_KINDS:
            continue  # the machine's word no longer goes out: the person's does
        old_condition = condition
        if event.kind in ("opened", "state_change") and event.status is not None:
            condition = Condition.of(event.status, critical=cause_critical)
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
        body = _public_body(event, cause_name, condition, worded)
        if not body:
            continue
        affected: tuple[AffectedView, ...] = ()
        if component is not None and event.kind in _MACHINE_KINDS and condition != old_condition:
            affected = (AffectedView(component.id, cause_name, old_condition, condition),)
        updates.append(
            UpdateView(
                id=opaque_id("update", str(incident.id), str(index)),
                status=status,
                body=body,
                at=event.at,
                affected=affected,
            )
        )
    if person and incident.phase:
        status = _phase(incident.phase, status)
    if incident.state is IncidentState.RESOLVED:
        status = IncidentStatus.RESOLVED
    elif status is IncidentStatus.RESOLVED:  # resolved event without the state: trust the state
        status = IncidentStatus.MONITORING
    postmortem = clean(incident.postmortem or "", POSTMORTEM_LIMIT) or None
    postmortem_at = incident.postmortem_at or incident.updated_at
    if postmortem is not None:
        pid = opaque_id("postmortem", str(incident.id))
        updates.append(UpdateView(pid, IncidentStatus.POSTMORTEM, postmortem, postmortem_at, ()))
        if status is IncidentStatus.RESOLVED:  # Statuspage's status once the postmortem is out
            status = IncidentStatus.POSTMORTEM
    return IncidentView(
        id=incident.id,
        name=name,
        status=status,
        impact=wording.impact.indicator,
        component=component,
        components=tuple(
            IncidentComponentView(a.name, a.condition, components.get((a.target, a.service)))
            for a in wording.affected
        ),
        opened_at=incident.opened_at,
        updated_at=max(incident.updated_at, postmortem_at if postmortem else 0.0),
        resolved_at=incident.resolved_at,
        monitoring_at=monitoring_at,
        updates=tuple(reversed(updates)),
        written=person,
        postmortem=postmortem,
        postmortem_at=postmortem_at if postmortem else None,
    )


def _phase(phase: str | None, otherwise: IncidentStatus) -> IncidentStatus:
    """A person's phase as Statuspage's status (an unknown one keeps the status it had)."""
    return IncidentStatus(phase) if phase in PHASES else otherwise


def _public_body(
    event: IncidentEvent, name: str, condition: Condition, described: Callable[[Gettext], str]
) -> str:
    """An update's text: the incident's description when it opened, then the cause's changes,
    each worded by the same rule as the title (a :class:`~monitor.i18n.Phrase`: English, and
    the page's reader's language on the page); a note as its person wrote it."""
    if event.kind == "note":
        return clean(event.text, NOTE_LIMIT)

    def word(_: Gettext) -> str:
        if event.kind == "resolved":
            return _("This incident has been resolved; %(name)s is operating normally.") % {
                "name": name
            }
        if event.kind == "opened":
            return _("We are investigating a problem: %(description)s") % {
                "description": _capital(described(_))
            }
        return _capital(sentence(name, condition, _))

    return Phrase(word(identity), word)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _orphan_name(
    target: str, service: str, components: Mapping[tuple[str, str], ComponentView]
) -> str:
    """A component no longer in the catalogue: its target's name, never a raw service name."""
    owner_view = components.get((target, TARGET_COMPONENT))
    owner = owner_view.name if owner_view is not None else (clean(target) or "QuestCity")
    return owner if service == TARGET_COMPONENT else f"a service of {owner}"
