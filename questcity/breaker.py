"""``questcity breaker reset TARGET SERVICE``: close a breaker on every replica of a target.

Breaker state is per process: a target run as three replicas has three breakers per service, and
a reset must reach each of them (:mod:`monitor.reset`). The replicas are the ones the monitor
checks (the target's ``url``, its ``replicas`` list, or what ``dns:NAME:PORT`` resolves to now);
the admin token comes from the target's ``admin_token_env``. Each replica's audit line names the
person (``--by NAME``, default the local account name; sent as ``X-QuestCity-Actor``). Nothing
is asked interactively, so a script can call it::

    $ questcity breaker reset questcity-api s3 [--by NAME]
    10.0.0.5:8000  ok      open → closed
    10.0.0.6:8000  FAILED  refused the token (401: missing, invalid or expired); …

One line per replica on stdout, a summary on stderr; exit 0 only if every replica answered 200
with its new state, 1 if any did not, 2 if nothing could be tried (a bad config, an unknown
target, no token, DNS failing, or no replica to reset: the name resolves to no address).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import DEFAULT_PATH

if TYPE_CHECKING:
    from monitor.config import MonitorConfig, Target
    from monitor.reset import ReplicaOutcome

COMMAND = "questcity breaker reset"
MAX_NAME_SHOWN = 60
"""Characters shown of a target name the caller typed that is not in the config."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    breaker = commands.add_parser("breaker", help="circuit breakers of a target's replicas")
    breaker_commands = breaker.add_subparsers(
        dest="breaker_command", metavar="COMMAND", required=True
    )
    reset = breaker_commands.add_parser(
        "reset",
        help="close SERVICE's breaker on every replica of TARGET (admin token from the "
        "target's admin_token_env); exit 0 only if every replica did",
    )
    reset.add_argument("target", metavar="TARGET", help="the target's name in monitor.toml")
    reset.add_argument("service", metavar="SERVICE", help="the service, e.g. database or s3")
    reset.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help="monitor.toml (default: ./monitor.toml)"
    )
    reset.add_argument(
        "--by",
        metavar="NAME",
        help="who is resetting, named in each replica's audit line (default: your account name)",
    )
    reset.set_defaults(handler=run_reset)


def run_reset(args: argparse.Namespace) -> int:
    from monitor.cli import config_or_exit

    config = config_or_exit(args.config)
    target = _target_or_exit(config, args.target)
    token = target.admin_token()
    if token is None:
        raise _refused(_no_token(target, args.config))
    actor = _actor(args.by)
    outcomes = asyncio.run(_reset(config, target, args.service, token, actor))
    from monitor.reset import reset_summary

    width = max((len(outcome.replica) for outcome in outcomes), default=0)
    for outcome in outcomes:
        print(_line(outcome, width))
    print(
        f"{COMMAND}: {args.service} of {target.title}: {reset_summary(outcomes)}", file=sys.stderr
    )
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _actor(by: str | None) -> str | None:
    """Who is resetting: ``--by NAME``, else the local account's name, cleaned as the TUI
    cleans its engineer's (printable, bounded); None when neither gives one (the audit line then
    names the token alone). A ``--by`` that cleans to nothing is a usage error."""
    from monitor.tui.identity import clean_name

    if by is None:
        try:
            return clean_name(getpass.getuser()) or None
        except (KeyError, OSError):  # no name for this uid (a container's)
            return None
    name = clean_name(by)
    if not name:
        raise _refused("--by needs a name (printable characters)")
    return name


async def _reset(
    config: MonitorConfig, target: Target, service: str, token: str, actor: str | None = None
) -> list[ReplicaOutcome]:
    import httpx

    from monitor.discovery import Discovery, DiscoveryError
    from monitor.reset import reset_everywhere

    try:
        replicas = await Discovery(config.dns_nameservers).replicas(target)
    except DiscoveryError as error:
        raise _refused(f"cannot find the replicas of {target.name}: {error}") from None
    if not replicas:  # (only `dns:` can give none: a static target has its url at the least)
        where = ", ".join(target.replicas) or target.url
        raise _refused(f"no replicas of {target.name} to reset: {where} resolves to no address")
    async with httpx.AsyncClient() as client:
        return await reset_everywhere(client, target, service, token, replicas, actor=actor)


def _line(outcome: ReplicaOutcome, width: int) -> str:
    word = "ok" if outcome.ok else "FAILED"
    reason = outcome.reason or outcome.message
    instance = f"  (instance {outcome.instance})" if outcome.instance else ""
    return f"{outcome.replica:<{width}}  {word:<6}  {reason}{instance}"


def _target_or_exit(config: MonitorConfig, name: str) -> Target:
    try:
        return config.target(name)
    except KeyError:
        shown = repr(name if len(name) <= MAX_NAME_SHOWN else name[: MAX_NAME_SHOWN - 1] + "…")
        known = ", ".join(target.name for target in config.targets)
        raise _refused(f"no target called {shown} in {config.path}; its targets: {known}") from None


def _no_token(target: Target, path: Path) -> str:
    if target.admin_token_env is None:
        return (
            f"target {target.name} has no admin token: add admin_token_env = "
            f'"QUESTCITY_ADMIN_TOKEN" to its [[targets]] table in {path}, then '
            "export QUESTCITY_ADMIN_TOKEN=$(questcity token --role admin)"
        )
    return (
        f"${target.admin_token_env} (the admin token of {target.name}) is not set: "
        f"export {target.admin_token_env}=$(questcity token --role admin)"
    )


def _refused(message: str) -> SystemExit:
    """Say why nothing was tried, on stderr; the exit to raise (2)."""
    print(f"{COMMAND}: {message}", file=sys.stderr)
    return SystemExit(2)
