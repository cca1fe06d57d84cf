"""What a subscriber is told: an e-mail's subject and plain-text body, a webhook's JSON, in the
subscriber's language (``en``, ``ru``: :mod:`monitor.i18n`).

Our own words are marked for translation (``_("…")``, :func:`~monitor.i18n.N_`); what people
wrote (titles, updates, component names) is shown as written. An automatic incident is titled
and described by the page's one wording rule (:func:`monitor.impact.describe`: the English here
is exactly its), a written one by its author's title. Times are in ``[page] timezone`` with the
zone named; JSON keeps UTC ISO times, and ids the page's own (the same ``opaque_id`` values
as ``/api/v2/*.json``, computed here because the monitor never imports the page).

The webhook JSON follows Statuspage's webhook payloads: ``meta`` (``unsubscribe``,
``documentation``, ``generated_at``), ``page``, and ``incident`` (Statuspage's incident object)
or ``scheduled_maintenance`` (its scheduled-maintenance object); the page's overall
``status_indicator`` is not sent (the sender does not compute the page).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    N_,
    format_duration,
    format_moment,
    translations,
)
from monitor.impact import Wording, describe
from monitor.public.settings import PageSettings
from monitor.public_actions import OPENED_MESSAGE, PHASE_MESSAGES
from monitor.store.models import (
    TARGET_COMPONENT,
    Incident,
    IncidentComponent,
    IncidentOrigin,
    IncidentState,
    Maintenance,
    PublicMessage,
    split_component_key,
)
from shared.resilience.sanitize import one_line

Gettext = Callable[[str], str]
Document = dict[str, Any]

DOCUMENTATION = "https://support.atlassian.com/statuspage/docs/enable-webhook-notifications/"
"""``meta.documentation``: the payloads are Statuspage's, so its page documents them."""
MAX_TITLE = 200
MAX_TEXT = 50_000

PHASE_WORDS = {
    "investigating": N_("Investigating"),
    "identified": N_("Identified"),
    "monitoring": N_("Monitoring"),
    "resolved": N_("Resolved"),
}
STARTED = N_(
    "Scheduled maintenance is currently in progress. We will provide updates as necessary."
)
COMPLETED = N_("The scheduled maintenance has been completed.")
CANCELLED = N_("This scheduled maintenance has been cancelled.")
"""The page's stock words for a window's updates (statuspage.maintenance): the same msgids."""
_STOCK = frozenset({OPENED_MESSAGE, *PHASE_MESSAGES.values()})
"""Texts ``questcity incident`` writes when a person gave none: ours, so translated."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """An e-mail's subject and plain-text body."""

    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Context:
    """What every message to one subscriber is written with."""

    page: PageSettings
    language: str
    names: Mapping[tuple[str, str], str]
    """Component display names by (target, service), from the store's catalogue."""
    unsubscribe_url: str
    now: float

    @property
    def gettext(self) -> Gettext:
        return gettext(self.language)

    def moment(self, ts: float) -> str:
        return format_moment(ts, self.language, ZoneInfo(self.page.timezone))

    def name(self, target: str, service: str) -> str:
        found = self.names.get((target, service))
        if found is not None:
            return found
        owner = self.names.get((target, TARGET_COMPONENT), target)
        return owner if service == TARGET_COMPONENT else f"{owner} / {service}"

    def key_name(self, key: str) -> str:
        return self.name(*split_component_key(key))


def gettext(language: str) -> Gettext:
    return translations(language if language in LANGUAGES else DEFAULT_LANGUAGE).gettext


def _prefix(_: Gettext, page: PageSettings) -> str:
    return _("[%(page)s status]") % {"page": page.name}


def _footer(ctx: Context) -> str:
    _ = ctx.gettext
    return "\n".join(
        [
            "-- ",
            _("You receive this because you subscribed to status updates of %(page)s.")
            % {"page": ctx.page.name},
            _("Unsubscribe: %(url)s") % {"url": ctx.unsubscribe_url},
        ]
    )


def _written(_: Gettext, text: str) -> str:
    """A person's text as written (bounded, control characters but line breaks removed); our
    stock texts translated."""
    if text in _STOCK:
        return _(text)
    kept = "".join(c for c in text[:MAX_TEXT] if c.isprintable() or c == "\n")
    return kept.strip()


# -- confirmation requests --------------------------------------------------------------------


def confirmation_email(
    page: PageSettings,
    language: str,
    confirm_url: str,
    expires_at: float,
    components: tuple[str, ...],
    names: Mapping[tuple[str, str], str],
) -> Rendered:
    ctx = Context(page, language, names, "", 0.0)
    _ = ctx.gettext
    followed = ", ".join(ctx.key_name(k) for k in components) if components else _("all components")
    lines = [
        _(
            "Someone, we hope you, asked to receive status updates of %(page)s at this address"
            " (%(components)s)."
        )
        % {"page": page.name, "components": followed},
        "",
        _("To confirm, open this link:"),
        confirm_url,
        "",
        _("The link works until %(moment)s.") % {"moment": ctx.moment(expires_at)},
        _("If you did not ask for this, ignore this message: nothing more will be sent."),
    ]
    subject = f"{_prefix(_, page)} " + _("Confirm your subscription")
    return Rendered(subject, "\n".join(lines) + "\n")


def confirmation_payload(
    page: PageSettings, confirm_url: str, expires_at: float, now: float
) -> Document:
    """AWS SNS's way: the endpoint's owner proves it wants our POSTs by visiting the URL."""
    return {
        "type": "subscription_confirmation",
        "confirm_url": confirm_url,
        "expires_at": iso(expires_at),
        "message": (
            f"Visit confirm_url to receive status updates of {page.name} at this endpoint; "
            "nothing else is sent until then."
        ),
        "meta": {"documentation": DOCUMENTATION, "generated_at": iso(now)},
        "page": _page(page),
    }


# -- incidents --------------------------------------------------------------------------------


def _listed(incident: Incident) -> tuple[IncidentComponent, ...]:
    return incident.components or (
        IncidentComponent(incident.target, incident.service, incident.impact),
    )


def incident_title(ctx: Context, incident: Incident) -> str:
    """A written incident's title as written; an automatic one's worded by the page's rule."""
    if incident.origin is IncidentOrigin.WRITTEN and incident.title.strip():
        return one_line(incident.title, MAX_TITLE)
    return _wording(ctx, incident).title


def _wording(ctx: Context, incident: Incident) -> Wording:
    return describe(_listed(incident), ctx.name, ctx.gettext)


def _affected(ctx: Context, wording: Wording) -> str:
    _ = ctx.gettext
    return ", ".join(
        _("%(name)s (%(condition)s)") % {"name": a.name, "condition": _(a.condition.word).lower()}
        for a in wording.affected
    )


def _phase(message: PublicMessage, incident: Incident) -> str:
    if message.phase in PHASE_WORDS:
        return message.phase
    if message.event == "resolved" or incident.state is IncidentState.RESOLVED:
        return "resolved"
    return incident.phase or "investigating"


def _incident_body(ctx: Context, message: PublicMessage, incident: Incident) -> str:
    _ = ctx.gettext
    if message.text.strip():
        return _written(_, message.text)
    if message.event == "postmortem" and incident.postmortem:
        return _written(_, incident.postmortem)
    if message.event == "resolved":
        return _("This incident has been resolved.")
    if message.event == "opened":
        return _("We are investigating a problem: %(description)s") % {
            "description": _wording(ctx, incident).body
        }
    return _wording(ctx, incident).body


def incident_email(ctx: Context, message: PublicMessage, incident: Incident) -> Rendered:
    _ = ctx.gettext
    title = incident_title(ctx, incident)
    if message.event == "postmortem":
        heading = _("Postmortem")
    else:
        heading = _(PHASE_WORDS[_phase(message, incident)])
    affected = _affected(ctx, _wording(ctx, incident))
    lines = [
        title,
        "",
        f"{heading} — {ctx.moment(message.at)}",
        _incident_body(ctx, message, incident),
        "",
    ]
    if affected:
        lines.append(_("Affected: %(components)s") % {"components": affected})
    lines.append(_("Started: %(moment)s") % {"moment": ctx.moment(incident.opened_at)})
    if incident.resolved_at is not None and incident.state is IncidentState.RESOLVED:
        lines.append(
            _("Duration: %(duration)s")
            % {"duration": format_duration(incident.resolved_at - incident.opened_at, ctx.language)}
        )
    lines += [
        "",
        _("Details: %(url)s") % {"url": f"{ctx.page.url}/incidents/{incident.id}"},
        "",
        _footer(ctx),
    ]
    subject = f"{_prefix(_, ctx.page)} {heading}: {title}"
    return Rendered(subject, "\n".join(lines) + "\n")


def incident_payload(ctx: Context, message: PublicMessage, incident: Incident) -> Document:
    """Statuspage's webhook for an incident: its incident object, updates newest first."""
    _ = ctx.gettext
    page_id = page_identifier(ctx.page)
    wording = _wording(ctx, incident)
    updates = []
    for index, event in enumerate(incident.events):
        if not event.public or event.kind not in ("opened", "update", "note", "resolved"):
            continue
        if event.kind == "opened" and incident.origin is IncidentOrigin.AUTO:
            body = _("We are investigating a problem: %(description)s") % {
                "description": wording.body
            }
        elif event.text.strip():
            body = _written(_, event.text)
        elif event.kind == "resolved":
            body = _("This incident has been resolved.")
        else:
            continue
        status = event.phase or ("resolved" if event.kind == "resolved" else "investigating")
        updates.append(
            {
                "id": opaque_id("update", str(incident.id), str(index)),
                "status": status,
                "body": body,
                "incident_id": str(incident.id),
                "created_at": iso(event.at),
                "updated_at": iso(event.at),
                "display_at": iso(event.at),
                "affected_components": None,
            }
        )
    updates.reverse()
    status = _phase(message, incident)
    document = {
        "id": str(incident.id),
        "name": incident_title(ctx, incident),
        "status": status,
        "impact": wording.impact.indicator.value,
        "created_at": iso(incident.opened_at),
        "updated_at": iso(max(incident.updated_at, message.at)),
        "started_at": iso(incident.opened_at),
        "monitoring_at": None,
        "resolved_at": iso(incident.resolved_at) if incident.resolved_at else None,
        "shortlink": f"{ctx.page.url}/incidents/{incident.id}",
        "page_id": page_id,
        "backfilled": False,
        "impact_override": None,
        "scheduled_for": None,
        "scheduled_until": None,
        "postmortem_body": incident.postmortem,
        "postmortem_published_at": (
            iso(incident.postmortem_at) if incident.postmortem_at is not None else None
        ),
        "incident_updates": updates,
        "components": [
            _component(page_id, a.target, a.service, a.name, a.condition.api.value, message.at)
            for a in wording.affected
            if a.condition.known
        ],
    }
    return {**_meta(ctx), "incident": document}


# -- maintenance windows ----------------------------------------------------------------------

MAINTENANCE_SUBJECTS = {
    "scheduled": N_("Maintenance scheduled: %(title)s"),
    "started": N_("Maintenance in progress: %(title)s"),
    "completed": N_("Maintenance completed: %(title)s"),
    "cancelled": N_("Maintenance cancelled: %(title)s"),
}
_MAINTENANCE_STATUS = {
    "scheduled": "scheduled",
    "started": "in_progress",
    "completed": "completed",
    "cancelled": "completed",  # Statuspage has no "cancelled": the page says completed too
}


def _maintenance_body(ctx: Context, message: PublicMessage, window: Maintenance) -> str:
    _ = ctx.gettext
    if message.text.strip():
        return _written(_, message.text)
    if message.event == "started":
        return _(STARTED)
    if message.event == "completed":
        return _(COMPLETED)
    if message.event == "cancelled":
        return _(CANCELLED)
    return _written(_, window.message or "")


def maintenance_email(ctx: Context, message: PublicMessage, window: Maintenance) -> Rendered:
    _ = ctx.gettext
    title = one_line(window.title, MAX_TITLE)
    subject_form = MAINTENANCE_SUBJECTS.get(message.event, MAINTENANCE_SUBJECTS["scheduled"])
    names = ", ".join(ctx.key_name(key) for key in window.components)
    lines = [title, ""]
    body = _maintenance_body(ctx, message, window)
    if body:
        lines += [body, ""]
    lines.append(
        _("Scheduled from %(start)s to %(end)s (times in %(zone)s).")
        % {
            "start": ctx.moment(window.starts_at),
            "end": ctx.moment(window.ends_at),
            "zone": ctx.page.timezone,
        }
    )
    if names:
        lines.append(_("Components: %(components)s") % {"components": names})
    lines += [
        "",
        _("Details: %(url)s") % {"url": f"{ctx.page.url}/#maintenance-{window.id}"},
        "",
        _footer(ctx),
    ]
    subject = f"{_prefix(_, ctx.page)} " + _(subject_form) % {"title": title}
    return Rendered(subject, "\n".join(lines) + "\n")


def maintenance_payload(ctx: Context, message: PublicMessage, window: Maintenance) -> Document:
    page_id = page_identifier(ctx.page)
    window_id = opaque_id("maintenance", str(window.id))
    status = _MAINTENANCE_STATUS.get(message.event, "scheduled")
    body = _maintenance_body(ctx, message, window) or one_line(window.title, MAX_TITLE)
    components = []
    for key in window.components:
        target, service = split_component_key(key)
        components.append(
            _component(
                page_id,
                target,
                service,
                ctx.name(target, service),
                "under_maintenance" if status == "in_progress" else "operational",
                message.at,
            )
        )
    document = {
        "id": window_id,
        "name": one_line(window.title, MAX_TITLE),
        "status": status,
        "impact": "maintenance",
        "created_at": iso(window.created_at),
        "updated_at": iso(message.at),
        "started_at": iso(window.starts_at),
        "monitoring_at": None,
        "resolved_at": iso(message.at) if status == "completed" else None,
        "shortlink": f"{ctx.page.url}/#maintenance-{window.id}",
        "page_id": page_id,
        "scheduled_for": iso(window.starts_at),
        "scheduled_until": iso(window.ends_at),
        "incident_updates": [
            {
                "id": opaque_id("maintenance-update", str(window.id), message.event),
                "status": status,
                "body": body,
                "incident_id": window_id,
                "created_at": iso(message.at),
                "updated_at": iso(message.at),
                "display_at": iso(message.at),
                "affected_components": None,
            }
        ],
        "components": components,
    }
    return {**_meta(ctx), "scheduled_maintenance": document}


# -- shared pieces ----------------------------------------------------------------------------


def render_email(
    ctx: Context,
    message: PublicMessage,
    incident: Incident | None,
    window: Maintenance | None,
) -> Rendered | None:
    """The e-mail for ``message`` (None: what it is about is gone from the store)."""
    if incident is not None:
        return incident_email(ctx, message, incident)
    if window is not None:
        return maintenance_email(ctx, message, window)
    return None


def render_payload(
    ctx: Context,
    message: PublicMessage,
    incident: Incident | None,
    window: Maintenance | None,
) -> Document | None:
    if incident is not None:
        return incident_payload(ctx, message, incident)
    if window is not None:
        return maintenance_payload(ctx, message, window)
    return None


def opaque_id(*parts: str) -> str:
    """The page's ids (``statuspage.model.opaque_id``: the same digest, so a webhook's ids are
    the ids ``/api/v2/*.json`` gives)."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=10).digest()
    return base64.b32encode(digest).decode().lower()[:12]


def page_identifier(page: PageSettings) -> str:
    return opaque_id("page", page.url)


def iso(ts: float) -> str:
    """Statuspage's timestamp form: ``2025-05-14T10:42:00.000Z``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _page(page: PageSettings) -> Document:
    return {"id": page_identifier(page), "name": page.name, "url": page.url}


def _meta(ctx: Context) -> Document:
    return {
        "meta": {
            "unsubscribe": ctx.unsubscribe_url,
            "documentation": DOCUMENTATION,
            "generated_at": iso(ctx.now),
        },
        "page": _page(ctx.page),
    }


def _component(
    page_id: str, target: str, service: str, name: str, status: str, at: float
) -> Document:
    return {
        "id": opaque_id("component", target, service),
        "name": name,
        "status": status,
        "created_at": iso(at),
        "updated_at": iso(at),
        "description": None,
        "page_id": page_id,
        "group_id": None,
    }
