"""``questcity monitor``: the headless poller and alerting daemon."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from monitor.config import DEFAULT_PATH, ConfigError, MonitorConfig, load_config


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = commands.add_parser("monitor", help="the headless poller and alerting daemon")
    monitor.add_argument(
        "--config", type=Path, default=DEFAULT_PATH, help="monitor.toml (default: ./monitor.toml)"
    )
    monitor.set_defaults(handler=run_monitor)


def config_or_exit(path: Path) -> MonitorConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"questcity: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def run_monitor(args: argparse.Namespace) -> int:
    from monitor.daemon import MonitorDaemon
    from monitor.store import StoreError
    from shared.resilience.jsonlog import configure_logging

    config = config_or_exit(args.config)
    configure_logging()

    async def main() -> StoreError | None:
        """Run until SIGINT or SIGTERM; the store error that kept the daemon from starting (a
        store it cannot reach, or one a newer program migrated), if one did."""
        try:
            daemon = MonitorDaemon(config)
        except StoreError as error:
            return error
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await daemon.start()
        except StoreError as error:
            await daemon.stop()  # (nothing was scheduled: closes the client and the engine)
            return error
        try:
            await stop.wait()
        finally:
            await daemon.stop()
        return None

    failed = asyncio.run(main())
    if failed is not None:
        # Its message names no host or password (monitor.store.errors), so it is safe to print.
        print(
            f"questcity: {failed} (the store named by [storage] url in {args.config})",
            file=sys.stderr,
        )
        return 2
    return 0
