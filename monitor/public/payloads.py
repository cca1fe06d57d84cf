"""What a webhook subscriber is sent: Statuspage's webhook payloads, as far as our data goes.

``meta`` (``unsubscribe``, ``documentation``, ``generated_at``), ``page``, and ``incident``
(Statuspage's incident object) or ``scheduled_maintenance`` (its scheduled-maintenance object);
the page's overall ``status_indicator`` is not sent (the sender does not compute the page). Times
are UTC ISO, ids the page's own (the same ``opaque_id`` values as ``/api/v2/*.json``, computed
here because the monitor never imports the page). Our own words in them (an automatic
incident's wording, the stock updates) are in the subscriber's language, like the e-mails
(:mod:`monitor.public.messages`); what people wrote is as written.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from monitor.public.messages import (
    MAX_TITLE,
    Context,
    incident_title,
    maintenance_body,
    phase_of,
    wording_of,
    written,
)
from monitor.public.settings import PageSettings
from monitor.store.models import Incident, IncidentOrigin, split_component_key
from monitor.store.public_models import Maintenance, PublicMessage
from shared.resilience.sanitize import one_line

Document = dict[str, Any]

DOCUMENTATION = "https://support.atlassian.com/statuspage/docs/enable-webhook-notifications/"
"""``meta.documentation``: the payloads are Statuspage's, so its page documents them."""


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


def incident_payload(ctx: Context, message: PublicMessage, incident: Incident) -> Document:
    """Statuspage's webhook for an incident: its incident object, updates newest first."""
    _ = ctx.gettext
    page_id = page_identifier(ctx.page)
    wording = wording_of(ctx, incident)
    updates = []
    for index, event in enumerate(incident.events):
        if not event.public or event.kind not in ("opened", "update", "note", "resolved"):
            continue
        if event.kind == "opened" and incident.origin is IncidentOrigin.AUTO:
            body = _("We are investigating a problem: %(description)s") % {
                "description": wording.body
            }
        elif event.text.strip():
            body = written(_, event.text)
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
    status = phase_of(message, incident)
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


_MAINTENANCE_STATUS = {
    "scheduled": "scheduled",
    "started": "in_progress",
    "completed": "completed",
    "cancelled": "completed",  # Statuspage has no "cancelled": the page says completed too
}


def maintenance_payload(ctx: Context, message: PublicMessage, window: Maintenance) -> Document:
    page_id = page_identifier(ctx.page)
    window_id = opaque_id("maintenance", str(window.id))
    status = _MAINTENANCE_STATUS.get(message.event, "scheduled")
    body = maintenance_body(ctx, message, window) or one_line(window.title, MAX_TITLE)
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
