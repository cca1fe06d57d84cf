"""What every kind's run is given: the clock, the environment, the default name servers, the
HTTP clients (shared by every HTTP check, one per trust setting) and the resolver its names are
looked up with (:mod:`monitor.checks.resolve`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from monitor.checks.resolve import Resolver, shared_resolver
from shared.resilience import Clock


class HttpClients(Protocol):
    def client(self, *, ca_file: str | None) -> httpx.AsyncClient:
        """The shared client trusting ``ca_file`` (closed by its owner); it follows no
        redirects (the http kind does, itself)."""
        ...


@dataclass(frozen=True, slots=True)
class RunContext:
    clock: Clock
    http: HttpClients
    environ: Mapping[str, str] | None = None
    """None: the process's environment."""
    nameservers: tuple[tuple[str, int], ...] = ()
    """``[dns] nameservers``: a ``dns`` check without its own ``nameserver`` asks these; empty:
    the system's resolver."""
    resolver: Resolver = field(default_factory=shared_resolver)
    """Looks up the names of tcp, tls, http and postgres checks (never the loop's default
    executor); by default the process's own."""

    def env(self, name: str | None) -> str | None:
        """The variable's value, stripped; None when unset or blank."""
        if not name:
            return None
        value = (os.environ if self.environ is None else self.environ).get(name, "").strip()
        return value or None
