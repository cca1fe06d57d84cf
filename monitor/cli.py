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
    from shared.resilience.jsonlog import configure_logging

    config = config_or_exit(args.config)
    configure_logging()

    async def main() -> None:
        daemon = MonitorDaemon(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await daemon.start()
        try:
            await stop.wait()
        finally:
            await daemon.stop()

    asyncio.run(main())
    return 0
