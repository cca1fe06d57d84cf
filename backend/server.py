"""Serving the backend under uvicorn, with a drain on shutdown.

On SIGTERM or Ctrl-C readiness turns 503 at once; after ``drain_delay`` seconds the listener
closes and in-flight requests get ``shutdown_grace`` seconds to finish; then the lifespan closes
the checker, the storage client and the engine. A second Ctrl-C exits at once.

Connections are bounded by :mod:`connection_guard`: a header deadline, a keep-alive timeout and a
connection cap (``QUESTCITY_HEADER_TIMEOUT``, ``QUESTCITY_KEEPALIVE_TIMEOUT``,
``QUESTCITY_MAX_CONNECTIONS``), the cap kept below the open-file limit, which is raised to its hard
limit first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
from collections.abc import Mapping
from types import FrameType

import uvicorn

from backend.app import create_app
from backend.settings import Settings
from backend.state import AppState
from connection_guard import ConnectionLimits, raise_open_files_limit
from connection_guard.uvicorn_protocol import uvicorn_options
from shared.resilience import SYSTEM_CLOCK, Clock

logger = logging.getLogger("backend")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: AppState) -> None:
        super().__init__(config)
        self._state = state
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            super().handle_exit(sig, frame)  # a second signal: uvicorn's own handling
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self._draining = True
        self._state.lifecycle.draining = True
        delay = self._state.settings.drain_delay
        logger.info(
            "draining: readiness is now 503; closing the listener in %.1f s",
            delay,
            extra={"event": "draining", "drain_delay": delay},
        )
        asyncio.get_running_loop().call_later(delay, setattr, self, "should_exit", True)


def build_server(
    settings: Settings, host: str, port: int, *, clock: Clock = SYSTEM_CLOCK
) -> DrainingServer:
    warn_if_proxy_unnamed(host, os.environ)
    app = create_app(settings, clock=clock)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON logging stays in charge
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace),
        lifespan="on",
        server_header=False,
        **uvicorn_options(connection_limits(settings), name="backend"),
    )
    return DrainingServer(config, app.state.questcity)


def warn_if_proxy_unnamed(host: str, environ: Mapping[str, str]) -> None:
    """One warning when the backend listens beyond loopback and trusts no proxy's
    X-Forwarded-For: behind a proxy on another host every client then has the proxy's address,
    and the per-client login limits become one limit for the whole site."""
    if "FORWARDED_ALLOW_IPS" in environ or _loopback(host):
        return
    logger.warning(
        "listening on %s with FORWARDED_ALLOW_IPS unset: behind a reverse proxy on another host "
        "all clients share one address and one login throttle; set FORWARDED_ALLOW_IPS to the "
        "proxy's addresses or network (e.g. 10.0.0.0/8)",
        host,
        extra={"event": "forwarded_allow_ips_unset"},
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def connection_limits(settings: Settings) -> ConnectionLimits:
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        max_connections=settings.max_connections,
    )
    return limits.within_open_files(raise_open_files_limit())


def serve(settings: Settings, host: str, port: int) -> None:
    build_server(settings, host, port).run()
