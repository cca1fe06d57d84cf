"""Talking to the public by hand: written incidents and maintenance windows — the one
implementation behind ``questcity incident …``, ``questcity maintenance …`` and the TUI's
dialogs (issue #15).

Each action checks what a person typed, then writes it through the store's ports
(``open_written_incident``, ``update_incident``, ``write_postmortem``, ``schedule_maintenance``,
``cancel_maintenance``); the store queues what subscribers are told in the same transaction.
Operator writes are unfenced (like ``add_silence``): any process may make them, the monitor need
not lead or run.

Everything here comes from a person and ends up on the public page, in e-mails, webhooks, a
terminal: titles are one printable line, messages bounded with their control characters
stripped, component keys must be public components of the store's catalogue (a private
``[[checks]]`` entry is never on the page, #16), times carry their offset. A refusal
(:class:`PublicActionError`) happens before anything is written and says what to do. Imports
nothing of Textual or of the CLI.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime

from monitor.i18n import DEFAULT_LANGUAGE, N_, format_duration
from monitor.impact import incident_impact
from monitor.store import (
    DECLARED_IMPACTS,
    PHASES,
    Component,
    HistoryRead,
    HistoryWrite,
    Incident,
    IncidentComponent,
    IncidentOrigin,
    IncidentState,
    Maintenance,
    component_key,
    split_component_key,
)
from shared.resilience.sanitize import one_line

# Durations in the page's own words ("1 h 5 min"), in English (the CLI's language): a listing and
# the page say the same.
_lasting = functools.partial(format_duration, lang=DEFAULT_LANGUAGE)

IMPACTS = ("minor", "major", "critical")
"""``--impact``: Statuspage's incident impacts a person declares (:data:`DECLARED_IMPACTS`)."""

MAX_TITLE = 200
MAX_MESSAGE = 5000
MAX_POSTMORTEM = 50_000
"""A postmortem is a document, not an update: longer, still bounded."""
MAX_NAME = 100
MAX_COMPONENTS = 50
MAX_KEY = 200
MAX_KEYS_SHOWN = 30
"""Known keys listed when an unknown one is given (a catalogue can be long)."""
MAX_WINDOW = 7 * 86400.0
"""The longest maintenance window: longer is an outage you planned, not maintenance."""
MAX_AHEAD = 90 * 86400.0
"""How far ahead a window may start: further is a plan, not a schedule."""
MAX_MOMENT = 64
"""Characters of an ISO 8601 moment; longer is not one."""

OPENED_MESSAGE = N_("We are investigating this issue.")
"""The first public update of an incident opened without ``--message``."""
PHASE_MESSAGES = {
    "investigating": N_("We are investigating this issue."),
    "identified": N_("The issue has been identified and a fix is being implemented."),
    "monitoring": N_("A fix has been implemented and we are monitoring the results."),
    "resolved": N_("This incident has been resolved."),
}
"""Statuspage's own default texts per status, for an update written without ``--message``."""

INCIDENT_LIST_HINT = "`questcity incident list` shows them"
MAINTENANCE_LIST_HINT = "`questcity maintenance list` shows them"


class PublicActionError(Exception):
    """Refused before anything was written; ``str()`` says why and what to do, for people."""


# -- what people type -----------------------------------------------------------------------


def _shown(text: str) -> str:
    return repr(one_line(text, 40))


def parse_moment(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 moment with its offset (``2026-12-08T02:00+03:00``,
    ``2026-12-08T02:00Z``); a moment without one is refused (whose 02:00?)."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > MAX_MOMENT or not cleaned.isprintable():
        raise PublicActionError(
            "a moment is ISO 8601 with its offset, like 2026-12-08T02:00+03:00 or 2026-12-08T02:00Z"
        )
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise PublicActionError(
            f"{_shown(text)} is not an ISO 8601 moment: write it like 2026-12-08T02:00+03:00 "
            "or 2026-12-08T02:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PublicActionError(
            f"{_shown(text)} has no offset: whose {moment:%H:%M}? Say +03:00 or Z "
            f"(like {cleaned}+03:00 or {cleaned}Z)"
        )
    return moment.timestamp()


def clean_by(name: str) -> str:
    """The person's name as stored and shown: one printable line; refused when empty."""
    cleaned = one_line(name, MAX_NAME)
    if not cleaned:
        raise PublicActionError("say who you are (--by NAME): public updates carry a name")
    return cleaned


def clean_title(title: str) -> str:
    """A title: 1 to :data:`MAX_TITLE` printable characters on one line (refused, not cut: it
    is what the public reads first)."""
    stripped = title.strip()
    if not stripped:
        raise PublicActionError("give it a title (--title T): what players will read first")
    if any(not c.isprintable() and c != "\t" for c in stripped):
        raise PublicActionError(
            "the title is one line of printable characters: no control codes or line breaks"
        )
    cleaned = " ".join(stripped.split())
    if len(cleaned) > MAX_TITLE:
        raise PublicActionError(
            f"the title is {len(cleaned)} characters: keep it to {MAX_TITLE} and put the rest "
            "in --message"
        )
    return cleaned


def clean_message(message: str | None, limit: int = MAX_MESSAGE, what: str = "message") -> str:
    """A message: lines kept, control characters (escapes, bidi overrides…) dropped, tabs made
    spaces, trailing blanks trimmed; "" when nothing is left; refused when over ``limit``."""
    if message is None:
        return ""
    if len(message) > limit * 2:
        # Read no further: whatever cleaning removes, this is far too long.
        raise PublicActionError(f"the {what} is over {limit} characters: shorten it")
    text = message.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    kept = "".join(c for c in text if c == "\n" or c.isprintable())
    lines = [line.rstrip() for line in kept.split("\n")]
    cleaned = "\n".join(lines).strip()
    if len(cleaned) > limit:
        raise PublicActionError(
            f"the {what} is {len(cleaned)} characters: keep it to {limit}"
            + (" and link to the rest" if what == "message" else "")
        )
    return cleaned


def check_impact(impact: str) -> str:
    cleaned = impact.strip().lower()
    if cleaned not in IMPACTS:
        raise PublicActionError(
            f"{_shown(impact)} is not an impact: say {', '.join(IMPACTS)} (minor: degraded "
            "performance; major: partial outage; critical: major outage)"
        )
    return cleaned


def check_phase(status: str) -> str:
    cleaned = status.strip().lower()
    if cleaned not in PHASES:
        raise PublicActionError(
            f"{_shown(status)} is not an incident status: say {', '.join(PHASES)} "
            "(resolved closes it)"
        )
    return cleaned


def check_components(keys: Sequence[str], catalogue: Sequence[Component]) -> tuple[str, ...]:
    """The component keys (``TARGET`` or ``TARGET/SERVICE``) in the order given, each once; each
    must be a public component of the store's catalogue (what is written here is the public's
    story, told on the page and to subscribers). Refused: none, more than
    :data:`MAX_COMPONENTS`, a private check's key (the message says how to make it public), or
    an unknown key (the message lists the known public ones)."""
    known = [component_key(c.target, c.service) for c in catalogue if c.public]
    private = {component_key(c.target, c.service) for c in catalogue if not c.public}
    wanted: list[str] = []
    for raw in keys:
        key = raw.strip()
        if not key:
            continue
        if key not in wanted:
            wanted.append(key)
        if len(wanted) > MAX_COMPONENTS:
            raise PublicActionError(
                f"name at most {MAX_COMPONENTS} components (a target's key covers its services)"
            )
    if not wanted:
        raise PublicActionError(
            "name the components it concerns (--components K1,K2): TARGET or TARGET/SERVICE, "
            "like questcity-api or questcity-api/s3"
        )
    known_set = set(known)
    for key in wanted:
        if key in private:
            raise PublicActionError(_private_key(key))
        if key not in known_set:
            raise PublicActionError(_unknown_key(key, known, private=bool(private)))
    return tuple(wanted)


def _private_key(key: str) -> str:
    return (
        f"{key!r} is a private check: it is not public (the status page does not show it, and "
        "incidents and maintenance windows name public components only). To tell the public "
        f"about it, set `public = true` in its [[checks]] entry (name = {key!r}) and restart "
        "the monitor"
    )


def _unknown_key(key: str, known: Sequence[str], *, private: bool = False) -> str:
    """``private``: the catalogue also has private checks (not listed: they cannot be named)."""
    import difflib

    shown = one_line(key, MAX_KEY)
    if not known and private:
        return (
            f"no public component {shown!r}: every component in the store is a private check "
            "(set `public = true` in a [[checks]] entry to tell the public about it)"
        )
    if not known:
        return (
            f"no component {shown!r}: the store has no components yet (the monitor writes them "
            "when it starts; check --config names the monitor's store)"
        )
    close = difflib.get_close_matches(shown, known, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    listed = ", ".join(known[:MAX_KEYS_SHOWN]) + (" …" if len(known) > MAX_KEYS_SHOWN else "")
    which = "public components" if private else "components"
    return f"no component {shown!r} in the store.{hint} Its {which}: {listed}"


# -- incidents ------------------------------------------------------------------------------


async def open_incident(
    reader: HistoryRead,
    writer: HistoryWrite,
    *,
    title: str,
    components: Sequence[str],
    impact: str = "minor",
    message: str | None = None,
    by: str,
    at: float,
) -> int:
    """Open a written incident (status ``investigating``) on ``components`` with the declared
    ``impact``; its id. Its first public update is ``message`` (a default one when none)."""
    actor = clean_by(by)
    heading = clean_title(title)
    declared = check_impact(impact)
    text = clean_message(message) or OPENED_MESSAGE
    keys = check_components(components, await reader.components())
    status = DECLARED_IMPACTS[declared]
    # critical=False: the person declared the impact; a critical service's own rule (unhealthy
    # is a major outage) would otherwise word "major" as "critical" on the page.
    affected = [IncidentComponent(*split_component_key(key), status) for key in keys]
    return await writer.open_written_incident(heading, affected, text, actor, at)


async def _existing(reader: HistoryRead, incident_id: int) -> Incident:
    found = await reader.incident(incident_id)
    if found is None:
        raise PublicActionError(f"no incident {incident_id}; {INCIDENT_LIST_HINT}")
    return found


async def update_incident(
    reader: HistoryRead,
    writer: HistoryWrite,
    incident_id: int,
    *,
    status: str,
    message: str | None = None,
    by: str,
    at: float,
) -> Incident:
    """A public update setting ``status`` (``resolved`` closes it; another status re-opens a
    resolved one). An automatic incident is taken over by ``by``: the daemon writes no public
    text into it and no longer resolves it. Returns the incident as the store has it now."""
    actor = clean_by(by)
    phase = check_phase(status)
    text = clean_message(message) or PHASE_MESSAGES[phase]
    found = await _existing(reader, incident_id)
    if phase == "resolved" and found.state is IncidentState.RESOLVED:
        raise PublicActionError(
            f"incident {incident_id} is resolved already; to say more, write a postmortem "
            f"(`questcity incident postmortem {incident_id} --text …`)"
        )
    updated = await writer.update_incident(incident_id, phase, text, actor, at)
    if updated is None:
        raise PublicActionError(f"no incident {incident_id}; {INCIDENT_LIST_HINT}")
    return updated


async def write_postmortem(
    reader: HistoryRead,
    writer: HistoryWrite,
    incident_id: int,
    *,
    text: str,
    by: str,
    at: float,
) -> Incident:
    """Publish (or replace) the postmortem of a resolved incident."""
    actor = clean_by(by)
    body = clean_message(text, MAX_POSTMORTEM, "postmortem")
    if not body:
        raise PublicActionError("the postmortem is empty: write what happened (--text or --file)")
    found = await _existing(reader, incident_id)
    if found.state is not IncidentState.RESOLVED:
        raise PublicActionError(
            f"incident {incident_id} is still open: resolve it first "
            f"(`questcity incident update {incident_id} --status resolved`), then write its "
            "postmortem"
        )
    written = await writer.write_postmortem(incident_id, body, actor, at)
    if written is None:
        raise PublicActionError(f"no incident {incident_id}; {INCIDENT_LIST_HINT}")
    return written


# -- maintenance windows --------------------------------------------------------------------


def check_window(starts_at: float, ends_at: float, now: float) -> None:
    """A window starts before it ends, ends in the future, lasts at most :data:`MAX_WINDOW` and
    starts at most :data:`MAX_AHEAD` from now."""
    if ends_at <= starts_at:
        raise PublicActionError(
            f"the window ends ({moment(ends_at)}) before it starts ({moment(starts_at)}): "
            "--ends comes after --starts"
        )
    if ends_at <= now:
        raise PublicActionError(
            f"the window ended already ({moment(ends_at)}): maintenance is scheduled ahead"
        )
    if ends_at - starts_at > MAX_WINDOW:
        raise PublicActionError(
            f"the window lasts {_lasting(ends_at - starts_at)}: at most 7 days (longer is not "
            "maintenance; split it, or open an incident)"
        )
    if starts_at - now > MAX_AHEAD:
        raise PublicActionError(
            f"the window starts {_lasting(starts_at - now)} from now: schedule it at most 90 "
            "days ahead"
        )


async def schedule_maintenance(
    reader: HistoryRead,
    writer: HistoryWrite,
    *,
    title: str,
    components: Sequence[str],
    starts_at: float,
    ends_at: float,
    message: str | None = None,
    by: str,
    at: float,
) -> int:
    """Schedule a window on ``components`` from ``starts_at`` to ``ends_at``; its id."""
    actor = clean_by(by)
    heading = clean_title(title)
    text = clean_message(message) or None
    check_window(starts_at, ends_at, at)
    keys = check_components(components, await reader.components())
    return await writer.schedule_maintenance(heading, keys, starts_at, ends_at, text, actor, at)


async def cancel_maintenance(
    reader: HistoryRead,
    writer: HistoryWrite,
    maintenance_id: int,
    *,
    by: str,
    at: float,
) -> Maintenance:
    """Cancel a window that has not ended (one already cancelled is returned as it is)."""
    actor = clean_by(by)
    window = await reader.maintenance(maintenance_id)
    if window is None:
        raise PublicActionError(f"no maintenance window {maintenance_id}; {MAINTENANCE_LIST_HINT}")
    if window.cancelled_at is not None:
        return window
    if window.completed_at is not None or window.ends_at <= at:
        raise PublicActionError(
            f"maintenance window {maintenance_id} ended at {moment(window.ends_at)}: there is "
            "nothing left to cancel"
        )
    cancelled = await writer.cancel_maintenance(maintenance_id, actor, at)
    if cancelled is None:
        raise PublicActionError(f"no maintenance window {maintenance_id}; {MAINTENANCE_LIST_HINT}")
    return cancelled


# -- one line each ----------------------------------------------------------------------------


def moment(at: float) -> str:
    """``2026-12-08T02:00Z``: UTC, to the minute (what :func:`parse_moment` reads back)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%MZ")


def origin(incident: Incident) -> str:
    """``auto``, ``written``, or ``taken over`` (an automatic one a person writes into)."""
    if incident.origin is IncidentOrigin.WRITTEN:
        return "written"
    return "taken over" if incident.taken_over else "auto"


def _keys(keys: Sequence[str]) -> str:
    shown = ",".join(one_line(k, MAX_KEY) for k in keys[:5])
    return shown + (f",+{len(keys) - 5}" if len(keys) > 5 else "")


def incident_line(incident: Incident, now: float) -> str:
    """``12  open/identified  written  major  Title  api,api/s3  opened 2026-12-08T02:00Z  1 h 5 min
    so far``: id, state/phase, origin, impact, title, components, opened, duration."""
    is_open = incident.state is IncidentState.OPEN
    state = incident.state.value + (f"/{incident.phase}" if incident.phase else "")
    impact = incident_impact(incident.components).indicator.value
    keys = [component_key(c.target, c.service) for c in incident.components] or [
        component_key(incident.target, incident.service)
    ]
    ended = now if is_open or incident.resolved_at is None else incident.resolved_at
    lasted = _lasting(ended - incident.opened_at) + (" so far" if is_open else "")
    fields = [
        str(incident.id),
        state,
        origin(incident),
        impact,
        one_line(incident.title, MAX_TITLE),
        _keys(keys),
        f"opened {moment(incident.opened_at)}",
        lasted,
    ]
    if incident.postmortem_at is not None:
        fields.append("postmortem")
    return "  ".join(fields)


def window_state(window: Maintenance, now: float) -> str:
    """``cancelled``, ``active``, ``upcoming`` or ``completed``."""
    if window.cancelled_at is not None:
        return "cancelled"
    if window.active(now):
        return "active"
    if window.upcoming(now):
        return "upcoming"
    return "completed"


def maintenance_line(window: Maintenance, now: float) -> str:
    """``3  upcoming  2026-12-08T02:00Z → 2026-12-08T04:00Z (2 h)  Title  api/s3``"""
    state = window_state(window, now)
    fields = [
        str(window.id),
        state,
        f"{moment(window.starts_at)} → {moment(window.ends_at)} "
        f"({_lasting(window.ends_at - window.starts_at)})",
        one_line(window.title, MAX_TITLE),
        _keys(window.components),
        f"by {one_line(window.created_by, MAX_NAME)}",
    ]
    if window.cancelled_at is not None:
        who = f" by {one_line(window.cancelled_by, MAX_NAME)}" if window.cancelled_by else ""
        fields.append(f"cancelled {moment(window.cancelled_at)}{who}")
    return "  ".join(fields)
