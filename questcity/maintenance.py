"""``questcity maintenance schedule|list|cancel``: planned work, told ahead (issue #15).

    $ id=$(questcity maintenance schedule --title "Database upgrade" \\
          --components questcity-api/database \\
          --starts 2026-12-08T02:00+03:00 --ends 2026-12-08T04:00+03:00)
    $ questcity maintenance list
    3  upcoming  2026-12-07T23:00Z → 2026-12-08T01:00Z (2h00m)  Database upgrade  …
    $ questcity maintenance cancel "$id"

During a window its components read ``under_maintenance`` on the status page, their alerts are
recorded and held, and automatic incidents are not opened for them; the monitor marks the start
and the end, and a component still down at the end gets an incident. Times are ISO 8601 with
their offset (``Z`` or ``+03:00``): a bare ``02:00`` is refused, whose 02:00 is it?

``schedule`` prints the new id alone on stdout. ``--by`` defaults to your login name. Exit codes
as ``questcity incident``'s: 0 done, 2 refused input, 1 store trouble.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from questcity.incident import (
    add_by,
    add_components,
    add_config,
    checked,
    component_list,
    person,
    positive_id,
    run_on_store,
    typed,
)

if TYPE_CHECKING:
    from monitor.store import HistoryReader
    from monitor.store.writer import HistoryWriter

COMMAND = "questcity maintenance"
RECENT = 7 * 86400.0
"""``list``: windows ended within the last week, besides the upcoming and active ones."""
MAX_LISTED = 100


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    maintenance = commands.add_parser(
        "maintenance",
        help="maintenance windows: schedule, list, cancel (components read under_maintenance, "
        "their alerts are held)",
    )
    sub = maintenance.add_subparsers(dest="maintenance_command", metavar="COMMAND", required=True)

    schedule = sub.add_parser(
        "schedule",
        help="schedule a window (≤ 7 days, starting ≤ 90 days ahead); prints its id alone",
        description="Schedule a maintenance window; its id alone goes to stdout. Times are ISO "
        "8601 with an offset: 2026-12-08T02:00+03:00 or 2026-12-07T23:00Z.",
    )
    schedule.add_argument("--title", required=True, metavar="T", help="one line, ≤ 200 characters")
    add_components(schedule)
    schedule.add_argument(
        "--starts", required=True, metavar="ISO8601", help="2026-12-08T02:00+03:00 (offset needed)"
    )
    schedule.add_argument(
        "--ends", required=True, metavar="ISO8601", help="2026-12-08T04:00+03:00 (offset needed)"
    )
    schedule.add_argument(
        "--message", metavar="M", help="what players are told (≤ 5000 characters)"
    )
    schedule.set_defaults(handler=run_schedule)

    listing = sub.add_parser(
        "list",
        help="upcoming, active and recent windows, one a line (cancelled ones marked)",
    )
    listing.set_defaults(handler=run_list)

    cancel = sub.add_parser("cancel", help="cancel a window that has not ended")
    cancel.add_argument("maintenance_id", metavar="ID", type=positive_id, help="the window's id")
    cancel.set_defaults(handler=run_cancel)

    for command in (schedule, cancel):
        add_by(command)
    for command in (schedule, listing, cancel):
        add_config(command)


def run_schedule(args: argparse.Namespace) -> int:
    def check() -> int:
        from monitor.public_actions import (
            check_window,
            clean_message,
            clean_title,
            parse_moment,
        )

        by = person(args.by)
        title = clean_title(typed(args.title, "--title") or "")
        starts_at = parse_moment(args.starts)
        ends_at = parse_moment(args.ends)
        check_window(starts_at, ends_at, time.time())
        message = clean_message(typed(args.message, "--message"))
        keys = component_list(args.components)

        async def scheduled(reader: HistoryReader, writer: HistoryWriter) -> None:
            from monitor.public_actions import schedule_maintenance

            window_id = await schedule_maintenance(
                reader,
                writer,
                title=title,
                components=keys,
                starts_at=starts_at,
                ends_at=ends_at,
                message=message or None,
                by=by,
                at=time.time(),
            )
            print(window_id)

        return run_on_store(args, COMMAND, "schedule", scheduled, empty="")

    return checked(COMMAND, "schedule", check)


def run_cancel(args: argparse.Namespace) -> int:
    def check() -> int:
        by = person(args.by)

        async def cancelled(reader: HistoryReader, writer: HistoryWriter) -> None:
            from monitor.public_actions import cancel_maintenance, maintenance_line

            now = time.time()
            window = await cancel_maintenance(reader, writer, args.maintenance_id, by=by, at=now)
            print(maintenance_line(window, now))

        return run_on_store(args, COMMAND, "cancel", cancelled, empty="")

    return checked(COMMAND, "cancel", check)


def run_list(args: argparse.Namespace) -> int:
    async def listed(reader: HistoryReader, _writer: HistoryWriter) -> None:
        from monitor.public_actions import maintenance_line, window_state

        now = time.time()
        found = await reader.maintenances(
            since=now - RECENT, include_cancelled=True, limit=MAX_LISTED
        )
        counts: dict[str, int] = {}
        for window in found:
            print(maintenance_line(window, now))
            state = window_state(window, now)
            counts[state] = counts.get(state, 0) + 1
        summary = ", ".join(
            f"{counts.get(state, 0)} {state}"
            for state in ("active", "upcoming", "completed", "cancelled")
        )
        print(f"{COMMAND} list: {summary} (ended in the last 7 days)", file=sys.stderr)

    return run_on_store(args, COMMAND, "list", listed, empty="no maintenance windows")
