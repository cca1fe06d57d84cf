"""What a subscriber is told: an e-mail's subject and plain-text body, in the subscriber's
language (``en``, ``ru``: :mod:`monitor.i18n`); a webhook's JSON is :mod:`monitor.public.payloads`.

Our own words are marked for translation (``_("…")``, :func:`~monitor.i18n.N_`); what people
wrote (titles, updates, component names) is shown as written. An automatic incident is titled
and described by the page's one wording rule (:func:`monitor.impact.describe`: the English here
is exactly its), a written one by its author's title. Times are in ``[page] timezone`` with the
zone named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    split_component_key,
)
from monitor.store.public_models import Maintenance, PublicMessage
from shared.resilience.sanitize import one_line

Gettext = Callable[[str], str]

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


def written(_: Gettext, text: str) -> str:
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


# -- incidents --------------------------------------------------------------------------------


def listed(incident: Incident) -> tuple[IncidentComponent, ...]:
    return incident.components or (
        IncidentComponent(incident.target, incident.service, incident.impact),
    )


def incident_title(ctx: Context, incident: Incident) -> str:
    """A written incident's title as written; an automatic one's worded by the page's rule."""
    if incident.origin is IncidentOrigin.WRITTEN and incident.title.strip():
        return one_line(incident.title, MAX_TITLE)
    return wording_of(ctx, incident).title


def wording_of(ctx: Context, incident: Incident) -> Wording:
    return describe(listed(incident), ctx.name, ctx.gettext)


def _affected(ctx: Context, wording: Wording) -> str:
    _ = ctx.gettext
    return ", ".join(
        _("%(name)s (%(condition)s)") % {"name": a.name, "condition": _(a.condition.word).lower()}
        for a in wording.affected
    )


def phase_of(message: PublicMessage, incident: Incident) -> str:
    if message.phase in PHASE_WORDS:
        return message.phase
    if message.event == "resolved" or incident.state is IncidentState.RESOLVED:
        return "resolved"
    return incident.phase or "investigating"


def _incident_body(ctx: Context, message: PublicMessage, incident: Incident) -> str:
    _ = ctx.gettext
    if message.text.strip():
        return written(_, message.text)
    if message.event == "postmortem" and incident.postmortem:
        return written(_, incident.postmortem)
    if message.event == "resolved":
        return _("This incident has been resolved.")
    if message.event == "opened":
        return _("We are investigating a problem: %(description)s") % {
            "description": wording_of(ctx, incident).body
        }
    return wording_of(ctx, incident).body


def incident_email(ctx: Context, message: PublicMessage, incident: Incident) -> Rendered:
    _ = ctx.gettext
    title = incident_title(ctx, incident)
    if message.event == "postmortem":
        heading = _("Postmortem")
    else:
        heading = _(PHASE_WORDS[phase_of(message, incident)])
    affected = _affected(ctx, wording_of(ctx, incident))
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


# -- maintenance windows ----------------------------------------------------------------------

MAINTENANCE_SUBJECTS = {
    "scheduled": N_("Maintenance scheduled: %(title)s"),
    "started": N_("Maintenance in progress: %(title)s"),
    "completed": N_("Maintenance completed: %(title)s"),
    "cancelled": N_("Maintenance cancelled: %(title)s"),
}


def maintenance_body(ctx: Context, message: PublicMessage, window: Maintenance) -> str:
    _ = ctx.gettext
    if message.text.strip():
        return written(_, message.text)
    if message.event == "started":
        return _(STARTED)
    if message.event == "completed":
        return _(COMPLETED)
    if message.event == "cancelled":
        return _(CANCELLED)
    return written(_, window.message or "")


def maintenance_email(ctx: Context, message: PublicMessage, window: Maintenance) -> Rendered:
    _ = ctx.gettext
    title = one_line(window.title, MAX_TITLE)
    subject_form = MAINTENANCE_SUBJECTS.get(message.event, MAINTENANCE_SUBJECTS["scheduled"])
    names = ", ".join(ctx.key_name(key) for key in window.components)
    lines = [title, ""]
    body = maintenance_body(ctx, message, window)
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
