"""``questcity incident open|update|list|postmortem``: incidents written by people (issue #15).

    $ id=$(questcity incident open --title "Photos fail to upload" \\
          --components questcity-api/s3 --impact major --message "Uploads fail; we are on it.")
    $ questcity incident update "$id" --status identified --message "A full disk; cleaning up."
    $ questcity incident update "$id" --status resolved
    $ questcity incident postmortem "$id" --file postmortem.md
    $ questcity incident list
    12  resolved/resolved  written  major  Photos fail to upload  questcity-api/s3  opened …

They read ``--config monitor.toml``'s ``[storage] url`` only and write that store, as any
process may (the monitor need not lead, or run); the store queues what subscribers are told in
the same transaction. Updating an automatic incident takes it over: from then on the daemon
neither resolves it nor writes public text into it. The checks and words are
:mod:`monitor.public_actions`' (shared with the TUI).

``open`` prints the new id alone on stdout. ``--by`` defaults to your login name. Exit codes:
0 done, 2 refused input (a bad title, status, component key, an unknown id: the message says
what to do), 1 store trouble (a bad config, no store, a store that cannot be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import DEFAULT_PATH

if TYPE_CHECKING:
    from monitor.store import HistoryReader
    from monitor.store.writer import HistoryWriter

COMMAND = "questcity incident"
RECENT = 7 * 86400.0
"""``list``: incidents updated within the last week, and every open one."""
MAX_LISTED = 100
MAX_ARGUMENT = 60_000
"""Characters of any one option a person types (a message, a postmortem): beyond the limits
the actions check, read no further."""
BY_HELP = "who writes it (shown with the update; default: your login name)"
PHASES_SHOWN = "investigating|identified|monitoring|resolved"


class Refused(Exception):
    """A command's refusal: its exit code and what to tell the person."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    incident = commands.add_parser(
        "incident",
        help="incidents written by people: open, update (resolved closes it), list, postmortem",
        description="Incidents written by people, shown on the status page and sent to its "
        "subscribers. Updating an automatic incident takes it over.",
    )
    sub = incident.add_subparsers(dest="incident_command", metavar="COMMAND", required=True)

    opening = sub.add_parser(
        "open",
        help="open an incident (status investigating); prints its id alone on stdout",
        description="Open an incident; its id alone goes to stdout: id=$(questcity incident "
        "open …).",
    )
    opening.add_argument("--title", required=True, metavar="T", help="one line, ≤ 200 characters")
    add_components(opening)
    opening.add_argument(
        "--impact",
        default="minor",
        metavar="minor|major|critical",
        help="minor: degraded performance; major: partial outage; critical: major outage "
        "(default minor)",
    )
    opening.add_argument(
        "--message",
        metavar="M",
        help="the first public update (≤ 5000 characters; default: "
        '"We are investigating this issue.")',
    )
    opening.set_defaults(handler=run_open)

    update = sub.add_parser(
        "update",
        help="a public update setting its status (resolved closes it); takes an automatic "
        "incident over",
    )
    update.add_argument("incident_id", metavar="ID", type=positive_id, help="the incident's id")
    update.add_argument("--status", required=True, metavar=PHASES_SHOWN, help="its status now")
    update.add_argument(
        "--message", metavar="M", help="the update (≤ 5000; default: Statuspage's for the status)"
    )
    update.set_defaults(handler=run_update)

    listing = sub.add_parser(
        "list",
        help="open and recent incidents, automatic and written, one a line: id, state/status, "
        "origin (auto, written, taken over), impact, title, components, opened, duration",
    )
    listing.set_defaults(handler=run_list)

    postmortem = sub.add_parser(
        "postmortem",
        help="publish (or replace) a resolved incident's postmortem, from --text or --file",
        description="Publish the postmortem of a resolved incident: "
        "shown under the incident on the page and sent to its subscribers. Writing it again "
        "replaces it.",
    )
    postmortem.add_argument("incident_id", metavar="ID", type=positive_id, help="the incident")
    source = postmortem.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", metavar="T", help="the postmortem (≤ 50000 characters)")
    source.add_argument(
        "--file", type=Path, metavar="PATH", help="read it from a UTF-8 text file ('-': stdin)"
    )
    postmortem.set_defaults(handler=run_postmortem)

    for command in (opening, update, postmortem):
        add_by(command)
    for command in (opening, update, listing, postmortem):
        add_config(command)


# -- shared with questcity.maintenance ------------------------------------------------------


def add_components(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--components",
        required=True,
        metavar="K1,K2",
        help="component keys, comma-separated: TARGET or TARGET/SERVICE (questcity-api/s3)",
    )


def add_by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="NAME", help=BY_HELP)


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PATH,
        help="monitor.toml naming the store in [storage] url (default: ./monitor.toml)",
    )


def positive_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not an id: a positive number (list)")
    return int(text)


def typed(value: str | None, option: str) -> str | None:
    """A person's option, bounded before anything reads it."""
    if value is not None and len(value) > MAX_ARGUMENT:
        raise Refused(2, f"{option} is over {MAX_ARGUMENT} characters: shorten it")
    return value


def person(by: str | None) -> str:
    """``--by``, else the login name; one printable line."""
    from monitor.public_actions import clean_by

    if by is None:
        import getpass

        try:
            by = getpass.getuser()
        except Exception:
            raise Refused(2, "--by NAME: no login name to default to; say who you are") from None
    if len(by) > MAX_ARGUMENT:
        raise Refused(2, "--by is one name, ≤ 100 characters")
    return clean_by(by)


def component_list(text: str) -> list[str]:
    bounded = typed(text, "--components") or ""
    return [key for key in (part.strip() for part in bounded.split(",")) if key]


def say(command: str, name: str, code: int, message: str) -> int:
    from shared.resilience.sanitize import one_line

    print(f"{command} {name}: {one_line(message, 2000)}", file=sys.stderr)
    return code


def run_on_store(
    args: argparse.Namespace,
    command: str,
    name: str,
    action: Callable[[HistoryReader, HistoryWriter], Awaitable[None]],
    *,
    empty: str,
) -> int:
    """``action(reader, writer)`` on the store ``--config`` names; its exit code. ``empty``:
    what ``list`` says of a SQLite store not created yet (other commands: exit 1)."""
    from monitor.public_actions import PublicActionError
    from monitor.store import HistoryReader, StoreError, open_engine
    from monitor.store.engine import sqlite_file
    from monitor.store.writer import HistoryWriter
    from statuspage.cli import ConfigError, storage_url

    try:
        url = storage_url(args.config)
        path = sqlite_file(url)
    except (ConfigError, StoreError) as error:
        return say(command, name, 1, str(error))
    if path is not None and not Path(path).exists():
        if name == "list":
            print(f"{command} list: no store at {path} yet: {empty}", file=sys.stderr)
            return 0
        return say(
            command, name, 1, f"no store at {path} yet (the monitor creates it); check --config"
        )

    async def run() -> None:
        engine = open_engine(url)
        try:
            await action(HistoryReader(engine), HistoryWriter(engine))
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except PublicActionError as refused:
        return say(command, name, 2, str(refused))
    except Refused as refused:
        return say(command, name, refused.code, str(refused))
    except StoreError as error:
        # Its message names no host or password (monitor.store.errors).
        return say(command, name, 1, f"{error} (the store named by [storage] url in {args.config})")
    return 0


def checked(command: str, name: str, check: Callable[[], int]) -> int:
    """``check()``, with the refusals of what was typed as exit 2 before the store is opened."""
    from monitor.public_actions import PublicActionError

    try:
        return check()
    except (PublicActionError, Refused) as refused:
        code = refused.code if isinstance(refused, Refused) else 2
        return say(command, name, code, str(refused))


# -- the commands -----------------------------------------------------------------------------


def run_open(args: argparse.Namespace) -> int:
    def check() -> int:
        from monitor.public_actions import check_impact, clean_message, clean_title

        by = person(args.by)
        title = clean_title(typed(args.title, "--title") or "")
        impact = check_impact(args.impact)
        message = clean_message(typed(args.message, "--message"))
        keys = component_list(args.components)

        async def opened(reader: HistoryReader, writer: HistoryWriter) -> None:
            from monitor.public_actions import open_incident

            incident_id = await open_incident(
                reader,
                writer,
                title=title,
                components=keys,
                impact=impact,
                message=message or None,
                by=by,
                at=time.time(),
            )
            print(incident_id)

        return run_on_store(args, COMMAND, "open", opened, empty="")

    return checked(COMMAND, "open", check)


def run_update(args: argparse.Namespace) -> int:
    def check() -> int:
        from monitor.public_actions import check_phase, clean_message

        by = person(args.by)
        phase = check_phase(args.status)
        message = clean_message(typed(args.message, "--message"))

        async def updated(reader: HistoryReader, writer: HistoryWriter) -> None:
            from monitor.public_actions import incident_line, update_incident

            now = time.time()
            incident = await update_incident(
                reader,
                writer,
                args.incident_id,
                status=phase,
                message=message or None,
                by=by,
                at=now,
            )
            print(incident_line(incident, now))

        return run_on_store(args, COMMAND, "update", updated, empty="")

    return checked(COMMAND, "update", check)


def run_postmortem(args: argparse.Namespace) -> int:
    def check() -> int:
        from monitor.public_actions import MAX_POSTMORTEM, clean_message

        by = person(args.by)
        raw = typed(args.text, "--text") if args.file is None else read_text(args.file)
        text = clean_message(raw, MAX_POSTMORTEM, "postmortem")

        async def written(reader: HistoryReader, writer: HistoryWriter) -> None:
            from monitor.public_actions import write_postmortem

            incident = await write_postmortem(
                reader, writer, args.incident_id, text=text, by=by, at=time.time()
            )
            print(f"Postmortem of incident {incident.id} published ({len(text)} characters).")

        return run_on_store(args, COMMAND, "postmortem", written, empty="")

    return checked(COMMAND, "postmortem", check)


def read_text(path: Path) -> str:
    """A postmortem file as text: bounded, UTF-8; '-' is stdin."""
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(MAX_ARGUMENT * 4 + 1)
        else:
            with path.open("rb") as file:
                data = file.read(MAX_ARGUMENT * 4 + 1)
    except OSError as error:
        raise Refused(2, f"--file {path}: cannot read it ({error.strerror or 'error'})") from None
    if len(data) > MAX_ARGUMENT * 4:
        raise Refused(2, f"--file {path}: too long; a postmortem is at most 50000 characters")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(2, f"--file {path}: not UTF-8 text; save it as UTF-8") from None


def run_list(args: argparse.Namespace) -> int:
    async def listed(reader: HistoryReader, _writer: HistoryWriter) -> None:
        from monitor.public_actions import incident_line
        from monitor.store import IncidentState

        now = time.time()
        found = await reader.incidents(since=now - RECENT, limit=MAX_LISTED, and_open=True)
        for incident in found:
            print(incident_line(incident, now))
        still = sum(1 for incident in found if incident.state is IncidentState.OPEN)
        print(
            f"{COMMAND} list: {still} open, {len(found) - still} resolved in the last 7 days",
            file=sys.stderr,
        )

    return run_on_store(args, COMMAND, "list", listed, empty="no incidents")
