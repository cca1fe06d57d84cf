"""The ``questcity`` command: one entry point that hands each sub-command to its part.

Building the parser imports each part's command module (its ``add_commands``), so those modules
import only what defining the commands needs; the rest (the web frameworks, the store's
SQLAlchemy, botocore, httpx, Textual) is imported by the function that runs the command. So
``questcity --help`` and ``questcity chaos status`` stay fast, and a part's dependencies are needed
only by the commands that use them (tests/test_cli_imports.py holds this).
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
    from questcity.alert import add_commands as alert_commands
    from questcity.breaker import add_commands as breaker_commands
    from questcity.chaos import add_commands as chaos_commands
    from questcity.down import add_commands as down_commands
    from questcity.incident import add_commands as incident_commands
    from questcity.maintenance import add_commands as maintenance_commands
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
    breaker_commands(commands)
    alert_commands(commands)
    incident_commands(commands)
    maintenance_commands(commands)
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
