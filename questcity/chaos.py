"""``questcity chaos database|s3 down|up|slow``: fail and heal the dependencies of a running
``questcity up`` stack, for demos and drills.

``questcity up`` puts each dependency behind a fault proxy and listens on a Unix socket under
``./var/up/``; this command sends it one JSON line and prints the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from questcity.embedded.faultproxy import FaultProxy

CONTROL_SOCKET = Path("var/up/control.sock")
SERVICES = ("database", "s3")
ACTIONS = ("down", "up", "slow", "blackhole", "reset")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chaos = commands.add_parser("chaos", help="fail or heal a dependency of `questcity up`")
    chaos.add_argument("service", choices=SERVICES)
    chaos.add_argument(
        "action",
        choices=ACTIONS,
        help="down: refuse connections; up: heal; slow: add latency; "
        "blackhole: accept and never answer; reset: reset connections",
    )
    chaos.add_argument(
        "--latency",
        type=float,
        default=0.5,
        help="seconds added per chunk with `slow` (default 0.5)",
    )
    chaos.set_defaults(handler=run_chaos)


def apply(proxy: FaultProxy, action: str, latency: float) -> str:
    """Switch ``proxy``; returns the mode now in force (used by the `up` side)."""
    if action == "down":
        proxy.refuse()
    elif action == "up":
        proxy.heal()
    elif action == "slow":
        proxy.slow(latency)
    elif action == "blackhole":
        proxy.blackhole()
    elif action == "reset":
        proxy.reset()
    else:
        raise ValueError(f"unknown action {action!r}")
    return proxy.mode.name.lower()


def run_chaos(args: argparse.Namespace) -> int:
    try:
        answer = asyncio.run(
            send(
                CONTROL_SOCKET,
                {
                    "service": args.service,
                    "action": args.action,
                    "latency": args.latency,
                },
            )
        )
    except (FileNotFoundError, ConnectionRefusedError):
        print(
            "questcity chaos: no running stack here; start one with `questcity up` in this "
            "directory first",
            file=sys.stderr,
        )
        return 1
    if not answer.get("ok"):
        print(f"questcity chaos: {answer.get('error', 'refused')}", file=sys.stderr)
        return 1
    print(f"{args.service}: {answer['mode']}")
    return 0


async def send(path: Path, message: dict[str, object]) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=10.0)
    finally:
        writer.close()
        await writer.wait_closed()
    answer: dict[str, object] = json.loads(line)
    return answer
