"""The overall banner: one headline in the colour of the worst state, and what is wrong; under it
the leadership line: which monitor leads, or, loudly, that none does; and the monitor's own
alerts (its token, its checks, its store), each with what to do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from rich.text import Text
from textual.widgets import Static

from monitor.store import Status
from monitor.tui.data import Leadership
from monitor.tui.formatting import duration
from monitor.tui.summary import Summary

_CLASSES = {
    Status.HEALTHY: "-healthy",
    Status.DEGRADED: "-degraded",
    Status.UNHEALTHY: "-outage",
    Status.UNREACHABLE: "-outage",
    Status.UNKNOWN: "-unknown",
}
_SYMBOL = {
    Status.HEALTHY: "●",
    Status.DEGRADED: "▲",
    Status.UNHEALTHY: "✖",
    Status.UNREACHABLE: "✖",
    Status.UNKNOWN: "?",
}


class Banner(Static):
    DEFAULT_CSS = """
    Banner {
        height: auto;
        min-height: 2;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    Banner.-healthy { background: $success-darken-2; }
    Banner.-degraded { background: $warning-darken-3; }
    Banner.-outage { background: $error-darken-2; }
    Banner.-unknown { background: $panel; }
    Banner.-alerting { background: $warning-darken-3; }
    Banner.-error { background: $error-darken-3; }
    """

    _shown: Summary | None = None

    def show(self, summary: Summary) -> None:
        if summary == self._shown:
            return  # an update re-lays the screen out: not at every refresh for nothing
        self._shown = summary
        for name in (*_CLASSES.values(), "-error", "-alerting"):
            self.remove_class(name)
        # Operational components beside a firing alert are not shown in the all-clear's green.
        self.add_class("-alerting" if summary.alerting else _CLASSES[summary.level])
        text = Text(f"{_SYMBOL[summary.level]} {summary.headline}", style="bold")
        if summary.detail:
            text.append("\n")
            text.append(summary.detail)
        self.update(text)

    def show_error(self, message: str) -> None:
        self._shown = None
        for name in (*_CLASSES.values(), "-alerting"):
            self.remove_class(name)
        self.add_class("-error")
        self.update(Text("✖ STORE UNAVAILABLE", style="bold") + Text("\n" + message))


NOBODY_LEADS = "NO MONITOR IS LEADING"


def leadership_text(lead: Leadership, tz: tzinfo, now: float) -> Text:
    """``monitor mon-a leads since 22:01:05`` (the time the leader wrote: for people), or why no
    monitor leads (the holder's id is outside text: always a ``Text``, never markup)."""
    if not lead.stale and lead.since is not None:
        moment = datetime.fromtimestamp(lead.since, tz)
        today = moment.date() == datetime.fromtimestamp(now, tz).date()
        at = f"{moment:%H:%M:%S}" if today else f"{moment:%m-%d %H:%M:%S}"
        return Text.assemble("monitor ", (lead.holder, "bold"), f" leads since {at}")
    text = Text(f"⚠ {NOBODY_LEADS}", style="bold")
    if lead.quiet_for is None:
        text.append(
            " — no monitor has taken this store's lease: is questcity monitor running with "
            "this config?"
        )
    elif not lead.holder:
        text.append(" — the last leader released the lease: checks and alerts have stopped")
    else:
        # How long this screen has watched the lease stand still (its own clock, never the
        # leader's): at least that long since the last renewal.
        text.append(" — ")
        text.append(lead.holder, style="bold")
        text.append(f" has not renewed its lease for {duration(lead.quiet_for)}")
        text.append(": checks and alerts have stopped")
    return text


class LeaderLine(Static):
    """The leadership line; hidden while there is nothing to say (no lease and no check)."""

    DEFAULT_CSS = """
    LeaderLine {
        height: auto;
        padding: 0 1;
        color: $text-muted;
    }
    LeaderLine.-stale {
        background: $error;
        color: $text;
        text-style: bold;
    }
    """

    _shown: Text | None = None

    def show(self, lead: Leadership | None, tz: tzinfo, now: float) -> None:
        self.display = lead is not None
        if lead is None:
            return
        self.set_class(lead.stale, "-stale")
        text = leadership_text(lead, tz, now)
        if self._shown is None or text.plain != self._shown.plain:
            self._shown = text
            self.update(text)


class MonitorLine(Static):
    """The monitor's alerts about itself, one line each with what to do; hidden when none fire.
    A monitor that cannot see (no token, a refused one) or write is not quiet about it."""

    DEFAULT_CSS = """
    MonitorLine {
        height: auto;
        padding: 0 1;
        background: $warning-darken-2;
        color: $text;
        text-style: bold;
    }
    """

    _shown: tuple[str, ...] | None = None

    def show(self, lines: Sequence[str]) -> None:
        self.display = bool(lines)
        if tuple(lines) != self._shown:
            self._shown = tuple(lines)
            self.update(Text("\n".join(lines)))
