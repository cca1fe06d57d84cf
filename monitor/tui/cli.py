"""``questcity tui``: the on-call TUI in this terminal, or in a browser with ``--serve``.

Wired into ``questcity`` by ``add_commands(subparsers)``; ``python -m monitor.tui`` runs the same
command on its own (textual-serve starts each browser tab that way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from connection_guard import ConnectionLimits
from monitor.config import DEFAULT_PATH, ConfigError, MonitorConfig, load_config

FLUSH_GRACE = 5.0
"""Seconds the TUI waits on quitting for a check it ran to be written."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "tui",
        help="the on-call TUI, in this terminal or (--serve) in a browser",
        description="The on-call TUI over the monitor's history. It reads the store written by "
        "`questcity monitor` and never checks on a schedule of its own.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help="monitor config (default monitor.toml)"
    )
    parser.add_argument(
        "--serve", action="store_true", help="serve the TUI to browsers through textual-serve"
    )
    parser.add_argument(
        "--host",
        default=None,
        help="with --serve: address to bind (default 127.0.0.1; any other needs "
        "QUESTCITY_TUI_PASSWORD)",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="with --serve: port to bind (default 8081)"
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="with --serve: the URL browsers use, behind a reverse proxy "
        "(e.g. https://ops.example.org/tui)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=None,
        metavar="ADDR",
        help="with --serve: a reverse proxy's address or network (repeatable, or a comma list); "
        "requests from it are throttled by the client address in its X-Forwarded-For "
        "(default: none, X-Forwarded-For is ignored)",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=None,
        help="with --serve: browser tabs served at once, each a TUI process of about 80 MB "
        "(default 6); one more is told the cap",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="with --serve: connections held at once (default 64); beyond it the oldest idle "
        "one is closed, or the new one gets a 503",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=None,
        help="with --serve: seconds a client may take to send a request's headers (default 10)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="questcity tui", description="The on-call TUI.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    serve_only = [
        flag
        for flag, value in (
            ("--host", args.host),
            ("--port", args.port),
            ("--public-url", args.public_url),
            ("--trusted-proxy", args.trusted_proxy),
            ("--max-sessions", args.max_sessions),
            ("--max-connections", args.max_connections),
            ("--header-timeout", args.header_timeout),
        )
        if value is not None
    ]
    if serve_only and not args.serve:
        return _fail(f"{', '.join(serve_only)} only apply with --serve")
    if args.port is not None and not 0 < args.port < 65536:
        return _fail(f"--port {args.port}: must be between 1 and 65535")
    if args.max_sessions is not None and args.max_sessions < 1:
        return _fail(f"--max-sessions {args.max_sessions}: must be 1 or more")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        return _fail(str(error))
    if args.serve:
        return _serve(args, config)
    return _terminal(config)


def _serve(args: argparse.Namespace, config: MonitorConfig) -> int:
    from connection_guard import LimitsError
    from monitor.tui.serve import (
        DEFAULT_LIMITS,
        DEFAULT_MAX_SESSIONS,
        ServeOptions,
        ServeRefused,
        credentials_from,
        serve,
    )
    from monitor.tui.serve_guard import trusted_networks

    try:
        trusted_proxies = trusted_networks(args.trusted_proxy or ())
    except ValueError as error:
        return _fail(str(error))

    try:
        limits = ConnectionLimits(
            header_timeout=DEFAULT_LIMITS.header_timeout
            if args.header_timeout is None
            else args.header_timeout,
            keepalive_timeout=DEFAULT_LIMITS.keepalive_timeout,
            max_connections=DEFAULT_LIMITS.max_connections
            if args.max_connections is None
            else args.max_connections,
        )
    except LimitsError as error:
        return _fail(str(error))
    options = ServeOptions(
        config_path=config.path,
        host=args.host or "127.0.0.1",
        port=args.port or 8081,
        public_url=args.public_url,
        credentials=credentials_from(os.environ),
        max_sessions=args.max_sessions or DEFAULT_MAX_SESSIONS,
        limits=limits,
        trusted_proxies=trusted_proxies,
    )
    try:
        serve(options)
    except ServeRefused as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot listen on {options.host}:{options.port}: {error.strerror or error}")
    return 0


def _terminal(config: MonitorConfig) -> int:
    from monitor.store import StoreError

    try:
        asyncio.run(_session(config))
    except StoreError as error:
        # Its message names no host or password (monitor.store.errors), so it is safe to print.
        return _fail(f"{error} (the store named by [storage] url in {config.path})")
    return 0


async def _session(config: MonitorConfig) -> None:
    import httpx

    from monitor.store import StoreUnavailable, create_schema, open_engine
    from monitor.store.reader import open_reader
    from monitor.store.writer import HistoryWriter
    from monitor.tui.app import MonitorApp

    writing = open_engine(config.storage_url)
    try:
        # Before the daemon's first run, an empty history. A store that cannot be reached now
        # may be by the next reload: the app shows why it cannot read it, and keeps retrying.
        # Any other store error (a store a newer program migrated, which this one must not
        # write to) ends the session before it starts.
        with contextlib.suppress(StoreUnavailable):
            await create_schema(writing)
        writer = HistoryWriter(writing)
        async with open_reader(config.storage_url) as reader, httpx.AsyncClient() as http:
            app = MonitorApp(config, reader=reader, writer=writer, http=http)
            await app.run_async()
        # A check run from the TUI ("c") that finished as it quit is still written.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer.flush(), FLUSH_GRACE)
    finally:
        await writing.dispose()


def _fail(message: str) -> int:
    print(f"questcity tui: {message}", file=sys.stderr)
    return 2
