"""``questcity alert list|ack|silence``: what fires, acknowledging it, silencing a component.

    $ questcity alert list
    42  FIRING  questcity-api/s3  s3_failure_rate  since 2026-12-06T22:31:05Z  not acked  …
    $ questcity alert ack 42 --by alice
    $ questcity alert silence questcity-api/s3 --for 2h --by alice --reason "bucket migration"

They read ``--config monitor.toml``'s ``[storage] url`` only and act on that store, as any
process may (the monitor need not lead, or run): an ack stops the alert's reminders, a silence
keeps a component's alerts (a target's key: its services' too) from the notifiers until it ends
on its own; both are written on the open incident's timeline with who and when
(:mod:`monitor.alert_actions`, shared with the TUI).

``list`` prints one alert a line on stdout (firing ones; ``--all`` adds the recent resolved
ones), a count on stderr. Exit codes: 0 done, 1 not found or not firing (an unknown alert or
component key, an alert already resolved), 2 bad usage (a bad name, duration, key, or config,
or a store that cannot be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import DEFAULT_PATH

if TYPE_CHECKING:
    from monitor.store import Alert, HistoryReader, Silence
    from monitor.store.writer import HistoryWriter

COMMAND = "questcity alert"
MAX_LISTED = 100
"""Resolved alerts ``--all`` adds (the firing ones are all listed)."""
MAX_KEYS_SHOWN = 30
"""Component keys listed when an unknown one is given."""


class _Exit(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alert = commands.add_parser(
        "alert", help="what fires; acknowledge an alert; silence a component's alerts"
    )
    alert_commands = alert.add_subparsers(dest="alert_command", metavar="COMMAND", required=True)

    listing = alert_commands.add_parser(
        "list", help="firing alerts, one a line: id, state, component, rule, since, ack, silence"
    )
    listing.add_argument(
        "--all", action="store_true", help=f"also the last {MAX_LISTED} resolved alerts"
    )
    listing.set_defaults(handler=run_list)

    ack = alert_commands.add_parser(
        "ack", help="acknowledge a firing alert: its reminders stop (it fires until it clears)"
    )
    ack.add_argument("alert_id", metavar="ID", type=_alert_id, help="the alert's id (alert list)")
    ack.add_argument("--by", required=True, metavar="NAME", help="who acknowledges")
    ack.set_defaults(handler=run_ack)

    silence = alert_commands.add_parser(
        "silence",
        help="keep a component's alerts from the notifiers for a while (still recorded, shown)",
    )
    silence.add_argument(
        "key", metavar="KEY", help="component key: TARGET or TARGET/SERVICE (questcity-api/s3)"
    )
    silence.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", help="90s, 15m, 2h, 1d (≤ 7d)"
    )
    silence.add_argument("--by", required=True, metavar="NAME", help="who silences")
    silence.add_argument("--reason", metavar="R", help="why (shown with the silence)")
    silence.set_defaults(handler=run_silence)

    for command in (listing, ack, silence):
        command.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_PATH,
            help="monitor.toml naming the store in [storage] url (default: ./monitor.toml)",
        )


def _alert_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError("an alert id is a positive number (see alert list)")
    return int(text)


# -- the commands -----------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    return _run(args, "list", lambda reader, writer: _list(reader, show_all=args.all))


def run_ack(args: argparse.Namespace) -> int:
    try:
        by = _person(args.by, "--by")
    except _Exit as refused:
        return _say("ack", refused.code, str(refused))
    return _run(args, "ack", lambda reader, writer: _ack(reader, writer, args.alert_id, by))


def run_silence(args: argparse.Namespace) -> int:
    from monitor.alert_actions import ActionError, check_component_key, parse_duration

    try:
        seconds = parse_duration(args.duration)
        key = check_component_key(args.key)
        by = _person(args.by, "--by")
        reason = _reason(args.reason)
    except ActionError as error:
        return _say("silence", 2, f"{error}")
    except _Exit as refused:
        return _say("silence", refused.code, str(refused))
    return _run(
        args, "silence", lambda reader, writer: _silence(reader, writer, key, seconds, by, reason)
    )


# -- each on the store ------------------------------------------------------------------------


async def _list(reader: HistoryReader, *, show_all: bool) -> None:
    now = time.time()
    firing = await reader.alerts(active_only=True, limit=10_000)
    shown = list(firing)
    if show_all:
        known = {alert.id for alert in firing}
        recent = await reader.alerts(active_only=False, limit=MAX_LISTED + len(firing))
        shown += [alert for alert in recent if alert.id not in known][:MAX_LISTED]
    silences = await reader.silences(at=now)
    for alert in shown:
        print(_line(alert, silences, now))
    acked = sum(1 for alert in firing if alert.acked_at is not None)
    quiet = sum(1 for alert in firing if _silenced_until(alert, silences, now) is not None)
    summary = f"{len(firing)} firing ({acked} acknowledged, {quiet} silenced)"
    if show_all:
        summary += f", {len(shown) - len(firing)} resolved shown"
    print(f"{COMMAND} list: {summary}", file=sys.stderr)


async def _ack(reader: HistoryReader, writer: HistoryWriter, alert_id: int, by: str) -> None:
    from monitor.alert_actions import ActionError, ack

    try:
        outcome = await ack(reader, writer, alert_id, by=by, at=time.time())
    except ActionError as error:
        raise _Exit(1, str(error)) from None
    alert = outcome.alert
    print(outcome.sentence())
    if outcome.newly:
        return
    if alert.acked_at is not None:
        print(f"(acknowledged at {_when(alert.acked_at)}; nothing written)", file=sys.stderr)


async def _silence(
    reader: HistoryReader,
    writer: HistoryWriter,
    key: str,
    seconds: float,
    by: str,
    reason: str | None,
) -> None:
    from monitor.alert_actions import is_monitor_key, silence
    from monitor.store import component_key

    known = [component_key(c.target, c.service) for c in await reader.components()]
    if not is_monitor_key(key) and key not in known:
        raise _Exit(1, _unknown_key(key, known))
    outcome = await silence(reader, writer, key, seconds, by=by, reason=reason, at=time.time())
    print(f"{outcome.sentence()} Until {_when(outcome.ends_at)}.")


# -- words ------------------------------------------------------------------------------------


def _line(alert: Alert, silences: list[Silence], now: float) -> str:
    from monitor.alert_actions import clean_text

    firing = alert.resolved_at is None and alert.state.value == "firing"
    if not firing:
        ack = f"resolved at {_when(alert.resolved_at)}" if alert.resolved_at else "resolved"
    elif alert.acked_at is not None:
        ack = f"acked by {clean_text(alert.acked_by or '?', 100)} at {_when(alert.acked_at)}"
    else:
        ack = "not acked"
    until = _silenced_until(alert, silences, now) if firing else None
    quiet = f"silenced until {_when(until)}" if until is not None else "not silenced"
    fields = [
        str(alert.id),
        "FIRING" if firing else "RESOLVED",
        clean_text(alert.component, 200),
        clean_text(alert.rule, 100),
        f"since {_when(alert.started_at)}",
        ack,
        quiet,
        clean_text(alert.summary, 300),
    ]
    return "  ".join(fields)


def _silenced_until(alert: Alert, silences: list[Silence], now: float) -> float | None:
    ends = [s.ends_at for s in silences if s.covers(alert.target, alert.service, now)]
    return max(ends) if ends else None


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unknown_key(key: str, known: list[str]) -> str:
    import difflib

    if not known:
        return (
            f"no component {key} in the store: it has no components yet (the monitor writes "
            "them when it starts; check --config names the monitor's store)"
        )
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    shown = ", ".join(known[:MAX_KEYS_SHOWN]) + (" …" if len(known) > MAX_KEYS_SHOWN else "")
    return (
        f"no component {key} in the store{hint} Its components: {shown} "
        f"(`{COMMAND} list` shows the keys of firing alerts; the TUI's detail screen each "
        "component's)"
    )


def _person(name: str, option: str) -> str:
    from monitor.alert_actions import MAX_NAME

    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME or not cleaned.isprintable():
        raise _Exit(
            2, f"{option}: your name, 1 to {MAX_NAME} printable characters (no control codes)"
        )
    return cleaned


def _reason(reason: str | None) -> str | None:
    from monitor.alert_actions import MAX_REASON

    if reason is None or not reason.strip():
        return None
    cleaned = reason.strip()
    if len(cleaned) > MAX_REASON or not cleaned.isprintable():
        raise _Exit(2, f"--reason: at most {MAX_REASON} printable characters on one line")
    return cleaned


def _say(name: str, code: int, message: str) -> int:
    print(f"{COMMAND} {name}: {message}", file=sys.stderr)
    return code


# -- the store --------------------------------------------------------------------------------


def _run(
    args: argparse.Namespace,
    name: str,
    action: Callable[[HistoryReader, HistoryWriter], Awaitable[None]],
) -> int:
    """``action(reader, writer)`` on the store ``--config`` names; its exit code."""
    from monitor.store import HistoryReader, StoreError, open_engine
    from monitor.store.engine import sqlite_file
    from monitor.store.writer import HistoryWriter
    from statuspage.cli import ConfigError, storage_url

    try:
        url = storage_url(args.config)
        path = sqlite_file(url)
    except (ConfigError, StoreError) as error:
        return _say(name, 2, str(error))
    if path is not None and not Path(path).exists():
        if name == "list":
            print(f"{COMMAND} list: no store at {path} yet: nothing has fired", file=sys.stderr)
            return 0
        return _say(
            name,
            1,
            f"no store at {path} yet (the monitor creates it): nothing to "
            f"{'acknowledge' if name == 'ack' else 'silence'}; check --config",
        )

    async def run() -> None:
        engine = open_engine(url)
        try:
            await action(HistoryReader(engine), HistoryWriter(engine))
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except _Exit as refused:
        return _say(name, refused.code, str(refused))
    except StoreError as error:
        # Its message names no host or password (monitor.store.errors).
        return _say(name, 2, f"{error} (the store named by [storage] url in {args.config})")
    return 0
