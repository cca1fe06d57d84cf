"""``questcity store``: the monitor's history store. ``upgrade`` applies its migrations (what the
daemon does at start, for an operator who upgrades before starting it, or a store that only the
status page reads); ``current`` prints the revision it is at."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from monitor.config import DEFAULT_PATH

T = TypeVar("T")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = commands.add_parser("store", help="the monitor's history store (migrations)")
    store_commands = store.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    upgrade = store_commands.add_parser(
        "upgrade", help="apply the store's migrations; print its revision before and after"
    )
    current = store_commands.add_parser("current", help="print the store's revision")
    for command, handler in ((upgrade, run_upgrade), (current, run_current)):
        command.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_PATH,
            help="monitor.toml naming the store in [storage] url (default: ./monitor.toml)",
        )
        command.set_defaults(handler=handler)


def run_upgrade(args: argparse.Namespace) -> int:
    from monitor.store.migrate import upgrade_store

    done = _on_store(args, "upgrade", upgrade_store)
    if done is None:
        return 2
    assert not isinstance(done, _NoFile)
    new = done.before is None and not done.recognised
    before = _shown(done.before, recognised=done.recognised, initialised=not new)
    print(f"store revision before: {before}")
    print(f"store revision after: {done.after} (head)")
    return 0


def run_current(args: argparse.Namespace) -> int:
    from monitor.store.migrate import head_revision, known_revisions, store_revision

    found = _on_store(args, "current", store_revision, read_only=True)
    if found is None:
        return 2
    if found is _NO_FILE:
        print("store revision: none (no store file yet)")
        return 0
    assert not isinstance(found, _NoFile)
    shown = _shown(found.revision, recognised=found.recognised, initialised=found.initialised)
    head = head_revision()
    if found.revision == head and not found.recognised:
        print(f"store revision: {shown} (head)")
    elif found.revision is not None and found.revision not in known_revisions():
        print(f"store revision: {shown} (newer than this program's {head}: upgrade questcity)")
    else:
        command = f"questcity store upgrade --config {args.config}"
        print(f"store revision: {shown} (this program's is {head}: run `{command}`)")
    return 0


class _NoFile:
    """What a read-only look at a SQLite store finds when its file does not exist."""


_NO_FILE = _NoFile()


def _on_store(
    args: argparse.Namespace,
    name: str,
    action: Callable[..., Awaitable[T]],
    *,
    read_only: bool = False,
) -> T | _NoFile | None:
    """``action(engine)`` on the store ``args.config`` names; None (after saying why on stderr)
    for a bad config or a store that cannot be reached or used. ``read_only``: a SQLite file
    that is not there is not made (:data:`_NO_FILE` instead)."""
    from monitor.store.engine import open_engine, sqlite_file
    from monitor.store.errors import StoreError
    from statuspage.cli import ConfigError, storage_url

    # Only [storage] (as the status page reads it): a status page's host may keep a monitor.toml
    # with nothing else, and the store is all these commands touch.
    try:
        url = storage_url(args.config)
    except ConfigError as error:
        print(f"questcity store {name}: {error}", file=sys.stderr)
        return None

    async def run() -> T:
        engine = open_engine(url, read_only=read_only)
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        sqlite_path = sqlite_file(url)
        if read_only and sqlite_path and not Path(sqlite_path).exists():
            return _NO_FILE
        return asyncio.run(run())
    except StoreError as error:
        print(
            f"questcity store {name}: {error} (the store named by [storage] url in {args.config})",
            file=sys.stderr,
        )
        return None


def _shown(revision: str | None, *, recognised: bool, initialised: bool) -> str:
    if not initialised:
        return "none (no tables yet)"
    if recognised:
        # A store made before the migrations: its tables say where it is.
        return f"{revision or 'before 0001'} (no version table; recognised from its tables)"
    return revision or "none"
