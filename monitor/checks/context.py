"""What every kind's run is given: the clock, the environment, the default name servers and the
HTTP clients (shared by every HTTP check, one per trust setting)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from shared.resilience import Clock


class HttpClients(Protocol):
    def client(self, *, ca_file: str | None, follow_redirects: bool) -> httpx.AsyncClient:
        """The shared client for checks with these settings (made once, closed by its owner)."""
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

    def env(self, name: str | None) -> str | None:
        """The variable's value, stripped; None when unset or blank."""
        if not name:
            return None
        value = (os.environ if self.environ is None else self.environ).get(name, "").strip()
        return value or None
