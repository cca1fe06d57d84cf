"""Where a browser TUI request comes from: the reverse proxies the guard trusts
(``--trusted-proxy`` / ``[tui] trusted_proxies``) and the client behind one.

The peer is the client, unless the peer is a trusted proxy: then the right-most address in
``X-Forwarded-For`` that is not a trusted proxy, the one the proxy itself saw. Entries left of it
were written by the client (anything at all), and ``X-Forwarded-For`` from an untrusted peer is
ignored. Used by :class:`monitor.tui.serve_guard.Guard` for its throttle and its trusted header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded: Sequence[str], networks: Sequence[Network]) -> str:
    """The client: ``peer``, or behind a trusted proxy the right-most untrusted address of the
    ``X-Forwarded-For`` headers ``forwarded``."""
    if not is_trusted(peer, networks):
        return peer
    client = peer
    for entry in reversed(",".join(forwarded).split(",")):
        address = _address(entry)
        if address is None:  # not an address: nothing trustworthy further left
            break
        client = address
        if not is_trusted(address, networks):
            break
    return client


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``--trusted-proxy`` values (each an address or a network, or a comma list of them)."""
    networks = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"--trusted-proxy {item.strip()!r}: give the reverse proxy's IP address or "
                    "network, e.g. 127.0.0.1 or 10.0.0.0/8"
                ) from None
    return tuple(networks)


def _address(entry: str) -> str | None:
    """An ``X-Forwarded-For`` entry as a normalised IP address (a port some proxies append, and
    IPv6 brackets, dropped); ``None`` when it is not one."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None
