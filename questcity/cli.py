"""The ``questcity`` command: one entry point that hands each sub-command to its part.

Parts are imported only when their command runs, so ``questcity --help`` stays fast and a part's
dependencies are needed only by the commands that use them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="questcity",
        description="QuestCity: the city-quest backend, its monitor, on-call TUI and status page.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from backend.cli import add_commands as backend_commands
    from monitor.cli import add_commands as monitor_commands
    from monitor.tui.cli import add_commands as tui_commands
    from questcity.chaos import add_commands as chaos_commands
    from questcity.down import add_commands as down_commands
    from questcity.store import add_commands as store_commands
    from questcity.up import add_commands as up_commands
    from statuspage.cli import add_commands as statuspage_commands

    up_commands(commands)
    down_commands(commands)
    backend_commands(commands)
    monitor_commands(commands)
    store_commands(commands)
    statuspage_commands(commands)
    tui_commands(commands)
    chaos_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"questcity {version('questcity')}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
