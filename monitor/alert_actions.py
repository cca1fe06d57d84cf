"""Acknowledging an alert and silencing a component: the one implementation behind
``questcity alert ack|silence`` and the TUI's ``a`` / ``s`` keys (issue #14).

Each action is written through the store's ports (``ack_alert``, ``add_silence``) as a named
engineer, then on the timeline of the component's open incident (``open_incident_for``) as an
internal event (``kind="ack"`` / ``"silence"``, ``public=False``, ``actor=NAME``). The action
is the part that matters: if the timeline write fails, the ack or silence stands and the outcome
says the timeline missed it (``timeline_error``), so the caller can tell the engineer.

Everything here comes from a person (a name, a reason, a duration, a component key) and ends up in
a terminal, a browser and a notifier's text: it is checked, bounded and cut to one printable line
on the way in. Imports nothing of Textual or of the CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.store import (
    Alert,
    AlertState,
    HistoryRead,
    HistoryWrite,
    IncidentEvent,
    StoreError,
    split_component_key,
)
from shared.resilience.sanitize import one_line

MAX_SILENCE = 7 * 86400.0
"""The longest silence (7 days): a longer one is a component nobody watches, not a silence."""
MIN_SILENCE = 60.0
"""The shortest silence: anything shorter is a typo ("30" meant 30 minutes, not seconds)."""
MAX_NAME = 100
"""Characters kept of an engineer's name."""
MAX_REASON = 200
"""Characters kept of a silence's reason."""
MAX_KEY = 200
"""Characters of a component key (``TARGET/SERVICE``); longer is not one."""
ACK_EVENT = "ack"
SILENCE_EVENT = "silence"

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d{1,6})\s*([smhd])")
_KEY_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
MONITOR_COMPONENT = "@monitor"
"""The component of the monitor's own alerts (:mod:`monitor.self_alerts`): ``@monitor`` for the
store's, ``@monitor/TARGET`` for what it knows of one target (its token, its runs) — keys of
their own, so a silence of one never covers the other."""


class ActionError(Exception):
    """The action was refused before anything was written; ``str()`` says why, for people."""


# -- what people type -----------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``2h``, ``1d``, ``1h30m`` (units s m h d, no sign, no fraction),
    from :data:`MIN_SILENCE` to :data:`MAX_SILENCE`; :class:`ActionError` otherwise."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned or len(cleaned) > 32:
        raise ActionError("a duration is a number and a unit: 30m, 2h, 1d (up to 7d)")
    total, at = 0.0, 0
    for match in _DURATION.finditer(cleaned):
        if match.start() != at:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        at = match.end()
    if at != len(cleaned):
        raise ActionError(
            f"{_shown(text)} is not a duration: a number and a unit, like 30m, 2h or 1d"
        )
    if total < MIN_SILENCE:
        raise ActionError(f"a silence lasts at least {format_duration(MIN_SILENCE)}")
    if total > MAX_SILENCE:
        raise ActionError(f"a silence lasts at most {format_duration(MAX_SILENCE)}")
    return total


def format_duration(seconds: float) -> str:
    """``2h``, ``1h30m``, ``7d``: the words :func:`parse_duration` reads."""
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


clean_text = one_line
"""One printable line of at most ``limit`` characters (the shared rule; the name kept for the
CLI and the TUI, which import it from here)."""


def clean_actor(name: str) -> str:
    """The engineer's name as it is stored and shown; :class:`ActionError` when empty."""
    cleaned = clean_text(name, MAX_NAME)
    if not cleaned:
        raise ActionError("say who you are (--by NAME): acks and silences carry a name")
    return cleaned


def is_monitor_key(key: str) -> bool:
    """``@monitor`` or ``@monitor/TARGET``: the monitor's own alerts, in no catalogue."""
    target, service = split_component_key(key.strip())
    return target == MONITOR_COMPONENT and (not service or bool(_KEY_PART.fullmatch(service)))


def check_component_key(key: str) -> str:
    """``TARGET`` or ``TARGET/SERVICE`` (DESIGN §3), ``@monitor`` or ``@monitor/TARGET``, else
    :class:`ActionError`."""
    cleaned = key.strip()
    if len(cleaned) <= MAX_KEY and is_monitor_key(cleaned):
        return cleaned
    target, service = split_component_key(cleaned)
    if (
        len(cleaned) > MAX_KEY
        or not _KEY_PART.fullmatch(target)
        or (service and not _KEY_PART.fullmatch(service))
        or cleaned.endswith("/")
    ):
        raise ActionError(
            f"{_shown(key)} is not a component key: TARGET or TARGET/SERVICE "
            "(questcity-api, questcity-api/s3), or @monitor[/TARGET] for the monitor's own"
        )
    return cleaned


def _shown(text: str) -> str:
    return repr(clean_text(text, 40))


# -- the incident timeline ------------------------------------------------------------------


def timeline_event(kind: str, text: str, actor: str, at: float) -> IncidentEvent:
    """An ack or silence as an internal timeline event (never on the status page)."""
    return IncidentEvent(at=at, kind=kind, status=None, text=text, public=False, actor=actor)


async def write_on_timeline(
    reader: HistoryRead,
    writer: HistoryWrite,
    target: str,
    service: str,
    event: IncidentEvent,
) -> int | None:
    """Add ``event`` to the open incident of that component; its id, or None when none is open."""
    incident = await reader.open_incident_for(target, service)
    if incident is None:
        return None
    await writer.add_event(incident.id, event)
    return incident.id


@dataclass(frozen=True, slots=True)
class Logged:
    """Where an action went on the incident timeline."""

    incident_id: int | None = None
    error: str | None = None
    """Why the timeline write failed (the action itself stands)."""

    def sentence(self, component: str) -> str:
        if self.error is not None:
            return f"It could not be written to the incident timeline ({self.error})."
        if self.incident_id is None:
            return f"{component} has no open incident to log it on."
        return f"Logged on incident #{self.incident_id}."


async def _log(
    reader: HistoryRead, writer: HistoryWrite, target: str, service: str, event: IncidentEvent
) -> Logged:
    try:
        return Logged(await write_on_timeline(reader, writer, target, service, event))
    except StoreError as error:
        return Logged(error=type(error).__name__)


# -- ack --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckOutcome:
    alert: Alert
    """The alert as the store has it now (``acked_by``/``acked_at`` set)."""
    newly: bool
    """False when it had already been acknowledged (the first ack's who and when stand)."""
    logged: Logged

    def sentence(self) -> str:
        what = f"Alert #{self.alert.id} ({self.alert.rule} on {self.alert.component})"
        if not self.newly:
            return f"{what} was already acknowledged by {self.alert.acked_by}."
        return (
            f"{what} acknowledged: no more reminders. {self.logged.sentence(self.alert.component)}"
        )


async def ack(
    reader: HistoryRead, writer: HistoryWrite, alert_id: int, *, by: str, at: float
) -> AckOutcome:
    """Acknowledge a firing alert as ``by``; :class:`ActionError` for an unknown or resolved
    alert. A second ack keeps the first's name and writes nothing to the timeline."""
    actor = clean_actor(by)
    found = await reader.alert(alert_id)
    if found is None:
        raise ActionError(f"there is no alert #{alert_id} (questcity alert list shows them)")
    if found.state is not AlertState.FIRING:
        raise ActionError(f"alert #{alert_id} is resolved already: nothing to acknowledge")
    if found.acked_by is not None:
        return AckOutcome(found, False, Logged())
    acked = await writer.ack_alert(alert_id, actor, at)
    if acked is None:
        raise ActionError(f"there is no alert #{alert_id} (questcity alert list shows them)")
    if acked.acked_by != actor:
        return AckOutcome(acked, False, Logged())  # someone else's ack landed first
    text = f"Alert acknowledged by {actor}: {acked.rule} — {clean_text(acked.summary, 200)}"
    event = timeline_event(ACK_EVENT, text, actor, at)
    return AckOutcome(acked, True, await _log(reader, writer, acked.target, acked.service, event))


# -- silence ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SilenceOutcome:
    silence_id: int
    component: str
    starts_at: float
    ends_at: float
    by: str
    reason: str | None
    logged: Logged

    def sentence(self) -> str:
        length = format_duration(self.ends_at - self.starts_at)
        return (
            f"Alerts of {self.component} silenced for {length} (#{self.silence_id}): still "
            f"recorded and shown, not sent. {self.logged.sentence(self.component)}"
        )


async def silence(
    reader: HistoryRead,
    writer: HistoryWrite,
    component: str,
    seconds: float,
    *,
    by: str,
    reason: str | None,
    at: float,
) -> SilenceOutcome:
    """Silence ``component``'s alerts (a target's key covers its services) from ``at`` for
    ``seconds`` (bounded to :data:`MAX_SILENCE`) as ``by``, and log it on the timeline."""
    actor = clean_actor(by)
    key = check_component_key(component)
    if not MIN_SILENCE <= seconds <= MAX_SILENCE:
        raise ActionError(
            f"a silence lasts from {format_duration(MIN_SILENCE)} to {format_duration(MAX_SILENCE)}"
        )
    why = clean_text(reason, MAX_REASON) if reason else ""
    ends_at = at + seconds
    silence_id = await writer.add_silence(key, at, ends_at, actor, why or None)
    text = f"Alerts of {key} silenced for {format_duration(seconds)} by {actor}" + (
        f": {why}" if why else ""
    )
    target, service = split_component_key(key)
    logged = await _log(
        reader, writer, target, service, timeline_event(SILENCE_EVENT, text, actor, at)
    )
    return SilenceOutcome(silence_id, key, at, ends_at, actor, why or None, logged)
