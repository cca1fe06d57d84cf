"""Free TCP ports for throwaway servers.

Ports come from below the kernel's ephemeral range (``ip_local_port_range``), so an outgoing
connection of some other program never takes one between our check and the server's ``bind``;
the pick is random (from the operating system's entropy, not the ``random`` module that a test
framework may seed), so parallel runs don't walk the same sequence. A port is handed out at most
once per process. A port is free when it can be bound on the loopback address and on all
interfaces (some servers, SeaweedFS among them, check both). What is left is a short race with
another process choosing the same port; servers here retry their first start with new ports.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterable
from pathlib import Path

_LOWEST = 10_000
_ATTEMPTS = 500
_rng = random.SystemRandom()
_lock = threading.Lock()
_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return low


def _bindable(port: int, host: str) -> bool:
    for address in {host, "0.0.0.0"}:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1", *, with_offsets: Iterable[int] = ()) -> int:
    """A port that is free now, and whose ``port + offset`` ports are free too.

    ``with_offsets`` serves servers that derive a second port from the first (SeaweedFS's gRPC
    port is its HTTP port + 10000): every derived port is checked and reserved as well.
    """
    offsets = sorted(set(with_offsets))
    highest_offset = offsets[-1] if offsets else 0
    ceiling = _ephemeral_floor() - highest_offset
    if ceiling - _LOWEST < 1_000:  # an unusually wide ephemeral range: take any port then
        ceiling = 65_536 - highest_offset
    with _lock:
        for _ in range(_ATTEMPTS):
            port = _rng.randrange(_LOWEST, ceiling)
            wanted = [port, *(port + offset for offset in offsets)]
            if any(p in _handed_out for p in wanted):
                continue
            if all(_bindable(p, host) for p in wanted):
                _handed_out.update(wanted)
                return port
    raise RuntimeError(f"found no free port on {host} in {_ATTEMPTS} attempts")
