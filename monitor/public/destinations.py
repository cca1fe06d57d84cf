"""Where a subscriber's webhook may point: the one rule the page's form and the monitor's sender
both apply (the form to what is typed, the sender to every address the host resolves to, before
each delivery). Standard library only: the status page loads it."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

WEB_PORTS = frozenset({80, 443, 8080, 8443})
"""The ports below 1024 a webhook may name. The rest of that range belongs to other protocols
(25 SMTP, 110 POP3, 22 SSH…): our JSON POSTed there would be a cross-protocol request on the
subscriber's behalf."""


def port_allowed(port: int) -> bool:
    """Whether a webhook may reach ``port``: 80, 443, 8080, 8443, or 1024 to 65535."""
    return port in WEB_PORTS or 1024 <= port <= 65535


def forbidden(address: IPAddress) -> bool:
    """Whether ``address`` is one a subscriber's webhook must never reach."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and 2002:0a00:0001:: reach the IPv4 address inside them.
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None and forbidden(inner):
            return True
        if address.teredo is not None:
            return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
