"""``questcity up``: the whole stack on one machine, on embedded defaults, in one command.

A local S3 server (SeaweedFS), PostgreSQL in a throwaway cluster when its server binaries are
installed (SQLite otherwise), each behind a fault proxy (``questcity chaos``); the backend; its TLS
front door (``--tls-port``, a self-signed certificate kept in ``./var/up/tls/``, the backend
reached through a fault proxy of its own: ``questcity chaos backend``); the monitor daemon
watching it with tokens minted for it, and checking the front door, its certificate, PostgreSQL
and S3 (``[[checks]]``); the status page; then the TUI in the foreground.

A fleet on one machine (:mod:`questcity.fleet`): ``--replicas N`` runs N backend processes
(``api-1``…, on consecutive ports, one key directory, database and bucket), all of them the
monitor's target's ``replicas``; ``--monitors M`` runs M monitors (``monitor-1``…) sharing a
PostgreSQL store, one leading.

Everything it starts dies with it, however it dies. Quitting the TUI, Ctrl-C, SIGTERM or SIGHUP (a
closed terminal) stops everything in order: the TUI, the monitor and the status page first (so
nothing publishes an outage that is only the stack going down), then the backend, then the fault
proxies and the servers, PostgreSQL with a fast shutdown. Should ``up`` die without a chance to
(SIGKILL, a crash), its watchdog (:mod:`questcity.watchdog`) does the same. Each process is recorded
in ``./var/up/stack.json`` (:mod:`questcity.record`) the moment it starts, so the next ``up`` can
tell a stack still running here, and name the command that stops it (``questcity down``).

The stack itself is :mod:`questcity.local_stack`, imported only when ``up`` runs (it is the
expensive one to import); what each process is told (the backend's environment, the tokens,
``monitor.toml``) is in :mod:`questcity.stack_settings`; the socket ``questcity chaos`` talks to,
in :mod:`questcity.chaos_control`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable

from questcity.fleet import MAX_MONITORS, MAX_REPLICAS, Fleet


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="the whole local stack, then the TUI")
    up.add_argument("--headless", action="store_true", help="run the services without the TUI")
    up.add_argument(
        "--serve-tui", action="store_true", help="also serve the TUI in a browser (127.0.0.1:8081)"
    )
    up.add_argument(
        "--sqlite", action="store_true", help="use SQLite even when PostgreSQL is installed"
    )
    up.add_argument(
        "--replicas",
        type=_count(MAX_REPLICAS),
        default=1,
        metavar="N",
        help=f"backend processes, on consecutive ports from --backend-port (1-{MAX_REPLICAS})",
    )
    up.add_argument(
        "--monitors",
        type=_count(MAX_MONITORS),
        default=1,
        metavar="M",
        help=f"monitor daemons, one leading (1-{MAX_MONITORS}; more than 1 needs PostgreSQL)",
    )
    up.add_argument("--backend-port", type=int, default=8000)
    up.add_argument("--statuspage-port", type=int, default=8082)
    up.add_argument("--tui-port", type=int, default=8081)
    up.add_argument(
        "--tls-port", type=int, default=8443, help="the TLS front door, in front of the backend"
    )
    up.set_defaults(handler=run_up)


def _count(most: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be 1 to {most}, got {text!r}")
        return value

    return parse


def run_up(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    from questcity.invocation import current_prefix
    from questcity.local_stack import Interrupted, LocalStack, Ports
    from questcity.preflight import StackError

    stack = LocalStack(
        fleet=Fleet(args.replicas, args.monitors),
        ports=Ports(args.backend_port, args.statuspage_port, args.tui_port, args.tls_port),
        serve_tui=args.serve_tui,
        use_postgres=False if args.sqlite else None,
        headless=args.headless,
        prefix=current_prefix(),
    )
    stop = stack.stopping
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await stack.start()
        if args.headless:
            stack.say("\nRunning headless; Ctrl-C stops everything.")
            await stop.wait()
        else:
            tui = asyncio.ensure_future(stack.run_tui())
            waiter = asyncio.ensure_future(stop.wait())
            await asyncio.wait({tui, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
    except StackError as error:
        with contextlib.suppress(OSError):
            print(f"questcity up: {error}", file=sys.stderr)
        code = 1
    except Interrupted:
        pass
    finally:
        started = stack.record is not None  # a refusal before anything started: nothing to say
        if started:
            stack.say("stopping…")
        await _quietly(stack.stop)
        if started:
            stack.say("stopped.")
    return code


async def _quietly(step: Callable[[], Awaitable[None]]) -> None:
    try:
        await step()
    except Exception as error:  # pragma: no cover - best effort while shutting down
        with contextlib.suppress(OSError):
            print(f"questcity up: while stopping: {type(error).__name__}: {error}", file=sys.stderr)
