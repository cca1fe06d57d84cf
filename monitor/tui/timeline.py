"""Incidents and their timelines as text (the detail and incidents screens share it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import tzinfo

from rich.text import Text

from monitor.store import Incident, IncidentEvent, IncidentState
from monitor.tui.formatting import bounded, clock_time, duration, timestamp
from monitor.tui.widgets.status import status_text

POSTMORTEM_LINE = 100
"""Characters of a postmortem's first line on its timeline event."""

_KIND = {
    "opened": ("opened", "bold red"),
    "state_change": ("state", "yellow"),
    "breaker_reset": ("reset", "bold cyan"),
    "note": ("note", "bold"),
    "resolved": ("resolved", "bold green"),
    "update": ("update", "bold"),
    "takeover": ("takeover", "bold magenta"),
    "postmortem": ("postmort", "bold"),
}


def incident_line(incident: Incident, tz: tzinfo, now: float) -> Text:
    text = Text(f"#{incident.id} ", style="bold")
    if incident.state is IncidentState.OPEN:
        text.append("OPEN", style="bold red")
        text.append(f" for {duration(now - incident.opened_at)}")
    else:
        text.append("resolved", style="green")
        resolved = incident.resolved_at or incident.updated_at
        text.append(f" after {duration(resolved - incident.opened_at)}")
    text.append(f", since {clock_time(incident.opened_at, tz, now)}, impact ")
    text.append_text(status_text(incident.impact))
    text.append(f": {incident.title}")
    return text


def event_line(event: IncidentEvent, tz: tzinfo) -> Text:
    word, style = _KIND.get(event.kind, (event.kind, ""))
    text = Text(f"{timestamp(event.at, tz)}  ", style="dim")
    text.append(f"{word:<8}", style=style)
    text.append(" public  " if event.public else " internal", style="dim")
    text.append("  ")
    if event.actor:
        text.append(f"{event.actor}: ", style="bold")
    if event.phase:
        text.append(f"{event.phase} — ", style="bold")
    if event.kind == "postmortem":
        # The whole document is the incidents screen's own section; a timeline line opens it.
        first = next((line for line in event.text.splitlines() if line.strip()), "")
        text.append(bounded(first, POSTMORTEM_LINE))
        return text
    text.append(event.text)
    return text


def incidents_text(
    incidents: Iterable[Incident], tz: tzinfo, now: float, *, events: bool = True
) -> Text:
    text = Text()
    for n, incident in enumerate(incidents):
        if n:
            text.append("\n")
        text.append_text(incident_line(incident, tz, now))
        if events:
            for event in incident.events:
                text.append("\n  ")
                text.append_text(event_line(event, tz))
    if not text:
        text.append("No incidents.", style="dim")
    return text


def figures_text(figures: Mapping[str, object], *, empty: str) -> Text:
    """``key  value`` lines (breaker counters, pool figures)."""
    if not figures:
        return Text(empty, style="dim")
    width = max(len(str(key)) for key in figures)
    text = Text()
    for n, (key, value) in enumerate(figures.items()):
        if n:
            text.append("\n")
        text.append(f"{str(key).replace('_', ' '):<{width}}  ", style="dim")
        text.append(_value(value), style="bold")
    return text


def _value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
