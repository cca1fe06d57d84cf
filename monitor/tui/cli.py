"""``questcity tui``: the on-call TUI in this terminal, or in a browser with ``--serve``; and
``questcity tui user add|remove|list``, the browser TUI's users file (:mod:`monitor.tui.users`).

Wired into ``questcity`` by ``add_commands(subparsers)``; ``python -m monitor.tui`` runs the same
command on its own (textual-serve starts each browser tab that way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
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
    _add_user_commands(parser)
    parser.add_argument(
        "--serve", action="store_true", help="serve the TUI to browsers through textual-serve"
    )
    parser.add_argument(
        "--host",
        default=None,
        help="with --serve: address to bind (default 127.0.0.1; any other needs [tui] "
        "users_file or trusted_header, or QUESTCITY_TUI_PASSWORD)",
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
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", run)
    return handler(args)


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
    from monitor.tui.identity import Role

    try:
        # [tui] trusted_proxies was checked by the config's parser: it cannot fail here.
        trusted_proxies = trusted_networks(config.tui.trusted_proxies) + trusted_proxies
    except ValueError as error:
        return _fail(str(error))
    credentials = credentials_from(os.environ)
    if credentials is not None and config.tui.users_file is not None:
        print(
            f"questcity tui: {config.tui.users_file} names the users; "
            "QUESTCITY_TUI_PASSWORD is ignored",
            file=sys.stderr,
        )
    options = ServeOptions(
        config_path=config.path,
        host=args.host or "127.0.0.1",
        port=args.port or 8081,
        public_url=args.public_url,
        credentials=credentials,
        max_sessions=args.max_sessions or DEFAULT_MAX_SESSIONS,
        limits=limits,
        trusted_proxies=trusted_proxies,
        users_file=config.tui.users_file,
        trusted_header=config.tui.trusted_header,
        default_role=Role(config.tui.default_role),
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


# -- questcity tui user ----------------------------------------------------------------------------


def _add_user_commands(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="tui_command", metavar="{user}")
    user = commands.add_parser(
        "user",
        help="the browser TUI's users file: add or change, remove, list",
        description="Who may sign in to the browser TUI (questcity tui --serve with "
        "[tui] users_file), with a role: viewer (reads), operator (ack, silence, note, check, "
        "reset), admin (all).",
    )
    actions = user.add_subparsers(dest="user_command", metavar="{add,remove,list}", required=True)
    add = actions.add_parser(
        "add",
        help="add a user or change their role and password",
        description="Add NAME, or change their role and password. The password is asked for "
        "(twice) on a terminal, else read as the first line of standard input; it is stored as "
        "an scrypt hash.",
    )
    add.add_argument("name", help="the user's name (letters, digits and . _ @ + -)")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    add.add_argument(
        "--no-password",
        action="store_true",
        help="no password: the user signs in only through the proxy's trusted header",
    )
    remove = actions.add_parser("remove", help="remove a user (their open tabs close)")
    remove.add_argument("name")
    actions.add_parser("list", help="the users, their roles, and whether they have a password")
    for action in (add, remove, actions.choices["list"]):
        action.add_argument(
            "--users-file",
            type=Path,
            default=None,
            help="the users file (default: [tui] users_file of --config)",
        )
        action.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="monitor config")
        action.set_defaults(handler=run_user)


def run_user(args: argparse.Namespace) -> int:
    from monitor.tui import users
    from monitor.tui.identity import Role

    path = args.users_file
    if path is None:
        try:
            config = load_config(args.config)
        except ConfigError as error:
            return _fail(f"{error} (or name the users file with --users-file)")
        path = config.tui.users_file
        if path is None:
            return _fail(f"{config.path} has no [tui] users_file; add one or pass --users-file")
    try:
        if args.user_command == "list":
            for account in users.load_users(path).values():
                kind = "password" if account.password_hash else "proxy header only"
                print(f"{account.name}\t{account.role.value}\t{kind}")
            return 0
        if args.user_command == "remove":
            if not users.remove_user(path, args.name):
                return _fail(f"{path}: no user {args.name!r}")
            print(f"removed {args.name} from {path}; their open tabs close")
            return 0
        password = None if args.no_password else _read_password(args.name)
        new = users.set_user(path, args.name, Role(args.role), password)
    except (users.UsersFileError, users.PasswordError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{path}: cannot be written ({error.strerror or error})")
    except EOFError:
        return _fail("no password given (type it, or send it as a line on standard input)")
    print(f"{'added' if new else 'changed'} {args.name} ({args.role}) in {path}")
    return 0


def _read_password(name: str) -> str:
    """From the terminal (asked twice, not echoed), else the first line of standard input."""
    from monitor.tui.users import MAX_PASSWORD, PasswordError, check_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise PasswordError("the two passwords differ")
    else:
        line = sys.stdin.readline(MAX_PASSWORD + 2)
        if not line:
            raise EOFError
        password = line.removesuffix("\n").removesuffix("\r")
    check_password(password)
    return password


def _fail(message: str) -> int:
    print(f"questcity tui: {message}", file=sys.stderr)
    return 2
