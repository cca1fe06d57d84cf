"""``questcity chaos``: fail and heal the dependencies of a running ``questcity up`` stack, for
demos and drills, and show what is failed now.

    questcity chaos s3 down                 # refuse new connections, reset open ones
    questcity chaos database slow --latency 1
    questcity chaos backend down            # the front door answers 502
    questcity chaos s3 heal                 # clear every fault of s3
    questcity chaos status                  # each service's fault now

``questcity up`` puts each dependency behind a fault proxy and listens on a Unix socket under
``./var/up/``; this command sends it one JSON line and prints the answer. What it prints uses the
command's own words (``down``, ``slow``, ``blackhole``, ``reset-connections``, ``no fault``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from questcity.embedded.faultproxy import FaultProxy, Mode

CONTROL_SOCKET = Path("var/up/control.sock")
SERVICES = ("database", "s3", "backend")
"""What ``questcity up`` puts behind a fault proxy: the backend's two dependencies, and the
backend itself as its TLS front door reaches it (the health API's target is watched directly)."""
STATUS = "status"
MAX_LATENCY = 60.0

FAULTS = {
    "down": "refuse new connections, reset open ones",
    "slow": "delay every chunk, each way, by --latency seconds",
    "blackhole": "accept connections, never answer",
    "reset-connections": "accept connections, then reset each one at once (RST)",
    "heal": "clear every fault: connections pass again",
}
"""Each action word and what it does to the service's connections."""

ALIASES = {"up": "heal", "reset": "reset-connections"}
"""Older words, still accepted: ``up`` heals; ``reset`` resets connections (it does not heal)."""

_WORD = {
    Mode.PASS: "no fault",
    Mode.REFUSE: "down",
    Mode.LATENCY: "slow",
    Mode.BLACKHOLE: "blackhole",
    Mode.RESET: "reset-connections",
}


def describe(proxy: FaultProxy) -> str:
    """The fault in force, in the command's words: ``down (new connections refused)``."""
    mode = proxy.mode
    detail = {
        Mode.PASS: "connections pass",
        Mode.REFUSE: "new connections refused",
        Mode.LATENCY: f"+{proxy.latency:g} s per chunk, each way",
        Mode.BLACKHOLE: "connections accepted, never answered",
        Mode.RESET: "every connection reset",
    }[mode]
    return f"{_WORD[mode]} ({detail})"


def apply(proxy: FaultProxy, action: str, latency: float) -> str:
    """Switch ``proxy``; return the fault now in force, described (used by the `up` side)."""
    action = ALIASES.get(action, action)
    if action == "down":
        proxy.refuse()
    elif action == "heal":
        proxy.heal()
    elif action == "slow":
        if not 0 < latency <= MAX_LATENCY:  # NaN fails this too
            raise ValueError(f"--latency must be more than 0 and at most {MAX_LATENCY:g} seconds")
        proxy.slow(latency)
    elif action == "blackhole":
        proxy.blackhole()
    elif action == "reset-connections":
        proxy.reset()
    else:
        raise ValueError(f"unknown action {action!r}; one of: {', '.join(FAULTS)}")
    return describe(proxy)


def handle(proxies: Mapping[str, FaultProxy], request: Mapping[str, object]) -> dict[str, object]:
    """The `up` side of one control request: switch a proxy, or report every service's fault."""
    action = str(request.get("action"))
    if action == STATUS:
        services: dict[str, object] = {
            service: describe(proxies[service]) if service in proxies else "no fault proxy here"
            for service in SERVICES
        }
        return {"ok": True, "services": services}
    service = str(request.get("service"))
    proxy = proxies.get(service)
    if proxy is None:
        error = (
            f"{service} has no fault proxy in this stack"
            if service in SERVICES
            else f"unknown service {service!r}"
        )
        return {"ok": False, "error": error}
    try:
        latency = float(str(request.get("latency", 0.5)))
        return {"ok": True, "mode": apply(proxy, action, latency)}
    except ValueError as error:
        return {"ok": False, "error": str(error)}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = "\n".join(f"  {word:<19}{what}" for word, what in FAULTS.items())
    chaos = commands.add_parser(
        "chaos",
        help="fail or heal a dependency of `questcity up`; `chaos status` shows the faults",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fail or heal a dependency of the `questcity up` stack running in this "
        "directory.\n\n"
        f"actions:\n{actions}\n\n"
        "`questcity chaos status` prints each dependency's fault now. Older words, still "
        "accepted:\n`up` for heal, `reset` for reset-connections (a fault, not a heal).",
    )
    chaos.add_argument(
        "service", choices=(*SERVICES, STATUS), help="the dependency, or `status` for all of them"
    )
    chaos.add_argument(
        "action",
        nargs="?",
        choices=(*FAULTS, *ALIASES),
        metavar="ACTION",
        help="what to do to it: one of the actions below",
    )
    chaos.add_argument(
        "--latency",
        type=float,
        default=0.5,
        help="seconds added per chunk with `slow` (default 0.5)",
    )
    chaos.set_defaults(handler=run_chaos)


def run_chaos(args: argparse.Namespace) -> int:
    if args.service == STATUS:
        if args.action is not None:
            return _usage(f"`chaos status` takes no action (got {args.action!r})")
        message: dict[str, object] = {"action": STATUS}
    elif args.action is None:
        return _usage(f"what to do with {args.service}? one of: {', '.join(FAULTS)}")
    else:
        message = {"service": args.service, "action": args.action, "latency": args.latency}
    try:
        answer = asyncio.run(send(CONTROL_SOCKET, message))
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
    if args.service == STATUS:
        services = answer.get("services")
        assert isinstance(services, dict)
        for service, state in services.items():
            print(f"{service}: {state}")
    else:
        print(f"{args.service}: {answer['mode']}")
    return 0


def _usage(problem: str) -> int:
    print(f"questcity chaos: {problem}", file=sys.stderr)
    return 2


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
