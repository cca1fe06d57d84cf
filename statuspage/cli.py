"""``questcity statuspage [--config monitor.toml] [--host 127.0.0.1] [--port 8082]``.

The page needs one thing from ``monitor.toml``: ``[storage] url`` (the daemon writes the component
catalogue into the store). It reads that key itself, with :mod:`tomllib`, so it imports nothing of
the monitor but the store's read side.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from pathlib import Path

from connection_guard import ConnectionLimits, LimitsError, raise_open_files_limit

DEFAULT_CONFIG = Path("monitor.toml")
DEFAULT_STORAGE_URL = "sqlite:///./var/monitor.db"
"""What the monitor uses when ``[storage] url`` is not set."""


class ConfigError(ValueError):
    """``monitor.toml`` is missing or unreadable, or its ``[storage] url`` is not a string."""


def storage_url(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (give the monitor's config with --config)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    storage = data.get("storage", {})
    if not isinstance(storage, dict):
        raise ConfigError(f"{path}: storage: must be a table ([storage])")
    url = storage.get("url", DEFAULT_STORAGE_URL)
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{path}: storage.url: must be a URL such as {DEFAULT_STORAGE_URL!r}")
    return url.strip()


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("statuspage", help="serve the public status page under uvicorn")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the monitor's config; only [storage] url is read (default: ./monitor.toml)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8082, help="port to bind (default 8082)")
    parser.add_argument(
        "--public-url",
        default=None,
        help="the URL users reach the page at, for links in the JSON and the feed "
        "(default: http://HOST:PORT)",
    )
    limits = ConnectionLimits()
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=limits.header_timeout,
        help="seconds a client may take to send a request's headers "
        f"(default {limits.header_timeout:g})",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=int,
        default=limits.keepalive_timeout,
        help="seconds an idle kept-alive connection stays open "
        f"(default {limits.keepalive_timeout})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=limits.max_connections,
        help="connections held at once; beyond it the oldest idle one is closed, or the new one "
        f"gets a 503 when all are busy (default {limits.max_connections})",
    )
    parser.set_defaults(handler=run_statuspage)


def run_statuspage(args: argparse.Namespace) -> int:
    import uvicorn

    from connection_guard.uvicorn_protocol import uvicorn_options
    from monitor.store.engine import StoreURLError, open_engine
    from statuspage.app import create_app

    try:
        url = storage_url(args.config)
        open_engine(url, read_only=True)  # refuses a URL the store cannot use, before serving
        limits = ConnectionLimits(args.header_timeout, args.keepalive_timeout, args.max_connections)
    except (ConfigError, StoreURLError, LimitsError) as error:
        print(f"questcity statuspage: {error}", file=sys.stderr)
        return 2
    public_url = args.public_url or f"http://{_host_for_url(args.host)}:{args.port}"
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    print(f"status page: http://{_host_for_url(args.host)}:{args.port}/", file=sys.stderr)
    uvicorn.run(
        create_app(url, public_url=public_url),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        **uvicorn_options(limits.within_open_files(raise_open_files_limit()), name="status page"),
    )
    return 0


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
