"""``questcity monitor``: the headless poller and alerting daemon."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import DEFAULT_PATH, ConfigError, MonitorConfig, load_config

if TYPE_CHECKING:
    from monitor.store import StoreError


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
    from monitor.notifiers import notifiers_or_exit
    from monitor.sqlite_lock import StoreLocked, StoreLockError, lock_sqlite_store
    from monitor.store import StoreError
    from shared.resilience.jsonlog import configure_logging

    config = config_or_exit(args.config)
    notifiers_or_exit(config.notifiers)  # (monitor.notifiers: an unusable Apprise URL: exit 2)
    try:
        # Held until this process ends (by any means: the kernel drops it even on kill -9).
        lock = lock_sqlite_store(config.storage_url)
    except (StoreLocked, StoreLockError) as refused:
        print(f"questcity: {refused}", file=sys.stderr)
        return 2
    except StoreError as error:
        return _store_failed(error, args.config)
    configure_logging()
    failed = asyncio.run(_lead_or_stand_by(config, sole=lock is not None))
    if failed is not None:
        return _store_failed(failed, args.config)
    return 0


def _store_failed(error: Exception, config: Path) -> int:
    # Its message names no host or password (monitor.store.errors), so it is safe to print.
    print(f"questcity: {error} (the store named by [storage] url in {config})", file=sys.stderr)
    return 2


async def _lead_or_stand_by(config: MonitorConfig, *, sole: bool) -> StoreError | None:
    """Run the leadership role loop until SIGINT or SIGTERM (ARCHITECTURE §11): stand by, lead
    when the lease allows. The store error that kept the monitor from starting (a store it
    cannot reach, or one a newer program migrated), if one did."""
    from monitor.daemon import MonitorDaemon  # (imported before leading: a takeover is quick)
    from monitor.leadership import Leadership, lease_ttl, monitor_id
    from monitor.store import StoreError, create_schema, open_engine
    from monitor.store.leases import LeaseStore
    from monitor.store.writing.base import Fence

    def daemon(fence: Fence, on_lease_lost: Callable[[], None]) -> MonitorDaemon:
        return MonitorDaemon(config, fence=fence, on_lease_lost=on_lease_lost)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        engine = open_engine(config.storage_url)
    except StoreError as error:
        return error
    try:
        # The lease lives in the store: its tables must be there before the first read.
        await create_schema(engine)
        leadership = Leadership(
            LeaseStore(engine),
            daemon,
            monitor=monitor_id(),
            ttl=lease_ttl(config),
            sole=sole,
        )
        await leadership.run(stop)
    except StoreError as error:
        return error
    finally:
        await engine.dispose()
    return None
