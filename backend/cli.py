"""The backend's sub-commands of ``questcity``: ``backend``, ``token``, ``db upgrade``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from backend.settings import Settings, SettingsError


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backend = commands.add_parser("backend", help="serve the QuestCity API under uvicorn")
    backend.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    backend.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    backend.set_defaults(handler=run_backend)

    token = commands.add_parser("token", help="mint a JWT signed with the backend's key")
    token.add_argument("--role", required=True, choices=["admin", "operator"])
    token.add_argument(
        "--ttl",
        type=int,
        default=3600,
        help="lifetime in seconds (default 3600: for a person; a monitor's token needs days, "
        "e.g. 7776000 for 90)",
    )
    token.add_argument("--subject", default=None, help="the token's sub claim")
    token.set_defaults(handler=run_token)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply the database migrations (Alembic)")
    upgrade.set_defaults(handler=run_db_upgrade)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        print(f"questcity: bad setting: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def run_backend(args: argparse.Namespace) -> int:
    from backend.server import serve
    from shared.resilience.jsonlog import configure_logging

    settings = _settings()
    configure_logging()
    serve(settings, args.host, args.port)
    return 0


def run_token(args: argparse.Namespace) -> int:
    import time

    from backend.auth import KeyFileError, mint_token_command
    from backend.auth.cli import expiry_note

    try:
        token = mint_token_command(_settings(), args.role, args.ttl, args.subject)
    except (ValueError, KeyFileError) as error:
        print(f"questcity token: {error}", file=sys.stderr)
        return 2
    print(token)
    # On stderr: `export QUESTCITY_MONITOR_TOKEN=$(questcity token ...)` still takes the token
    # alone, and whoever runs it sees when it stops working.
    print(expiry_note(args.role, args.ttl, time.time()), file=sys.stderr)
    return 0


def run_db_upgrade(args: argparse.Namespace) -> int:

    from backend.db import migrate
    from backend.db.engine import create_engine
    from backend.db.errors import DatabaseUnavailable, translated

    settings = _settings()

    async def upgrade() -> None:
        engine = create_engine(settings)
        try:
            async with translated():
                await migrate.upgrade(engine)
            print(f"database schema is at {await migrate.current_revision(engine)}")
        finally:
            await engine.dispose()

    try:
        asyncio.run(upgrade())
    except DatabaseUnavailable as error:
        print(
            f"questcity db upgrade: {error}; is QUESTCITY_DATABASE_URL right and the server up?",
            file=sys.stderr,
        )
        return 1
    return 0
