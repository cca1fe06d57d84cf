"""``questcity statuspage [--config monitor.toml] [--host 127.0.0.1] [--port 8082]``.

The page reads from ``monitor.toml``: ``[storage] url`` (the daemon writes the component
catalogue into the store), and ``[page]`` and ``[subscriptions]`` (its name, URL, time zone,
self-refresh, and who may subscribe). It reads them through the store's own settings
(:mod:`monitor.store.settings`) and :func:`monitor.public.settings.public_settings`, as the monitor
does, so it imports nothing of the monitor but the store's read side, the public settings and
the subscribers' inbox.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from connection_guard import ConnectionLimits, LimitsError, raise_open_files_limit
from monitor.public.settings import PublicSettings, PublicSettingsError, public_settings
from monitor.store.settings import DEFAULT_STORAGE_URL as DEFAULT_STORAGE_URL
from monitor.store.settings import StorageSettingsError, storage_settings

DEFAULT_CONFIG = Path("monitor.toml")


class ConfigError(ValueError):
    """``monitor.toml`` is missing or unreadable, or a value the page reads is not usable."""


def _document(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (give the monitor's config with --config)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def _storage_url(path: Path, data: dict[str, object]) -> str:
    storage = data.get("storage", {})
    try:
        return storage_settings(storage).url
    except StorageSettingsError as error:
        raise ConfigError(f"{path}: {error}") from None


def storage_url(path: Path) -> str:
    return _storage_url(path, _document(path))


@dataclass(frozen=True, slots=True)
class PageConfig:
    storage_url: str
    public: PublicSettings
    page_url: str | None
    """``[page] url`` when the file sets it; None: the page is where it is served."""


def page_config(path: Path) -> PageConfig:
    """What the page reads from ``monitor.toml``: ``[storage] url``, ``[page]`` and
    ``[subscriptions]``."""
    data = _document(path)
    url = _storage_url(path, data)
    try:
        public = public_settings(data)
    except PublicSettingsError as error:
        raise ConfigError(f"{path}: {error}") from None
    page = data.get("page")
    explicit = isinstance(page, dict) and "url" in page
    return PageConfig(url, public, public.page.url if explicit else None)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("statuspage", help="serve the public status page under uvicorn")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the monitor's config; [storage] url, [page] and [subscriptions] are read "
        "(default: ./monitor.toml)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8082, help="port to bind (default 8082)")
    parser.add_argument(
        "--public-url",
        default=None,
        help="the URL users reach the page at, for links in the JSON and the feed "
        "(default: [page] url of the config, else http://HOST:PORT)",
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
    from monitor.store import StoreURLError, open_engine
    from statuspage.app import create_app

    try:
        config = page_config(args.config)
        url = config.storage_url
        open_engine(url, read_only=True)  # refuses a URL the store cannot use, before serving
        limits = ConnectionLimits(args.header_timeout, args.keepalive_timeout, args.max_connections)
    except (ConfigError, StoreURLError, LimitsError) as error:
        print(f"questcity statuspage: {error}", file=sys.stderr)
        return 2
    public_url = (
        args.public_url or config.page_url or f"http://{_host_for_url(args.host)}:{args.port}"
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    print(f"status page: http://{_host_for_url(args.host)}:{args.port}/", file=sys.stderr)
    uvicorn.run(
        create_app(
            url, public_url=public_url, page_name=config.public.page.name, settings=config.public
        ),
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
