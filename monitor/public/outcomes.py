"""How a send to a subscriber fails, as :mod:`monitor.public.mail` and
:mod:`monitor.public.webhooks` report it to :mod:`monitor.public.sender`.

::

    SendError                      kind: a short class ("timeout", "refused", "rejected", …)
    ├── Unreachable                (also a ConnectionError) the destination did not answer:
    │                              retried at once by Guarded, counted by its breaker
    ├── Broken                     the destination answered but cannot serve anyone (SMTP auth
    │                              failed): counted by its breaker, not retried at once
    └── Refused                    the destination answered and said no to this one send (a
                                   recipient rejected, a webhook's 4xx, a private address):
                                   neither retried at once nor the destination's failure

``kind`` is all that is ever stored or shown: never a server's reply, a body or an address.
"""

from __future__ import annotations


class SendError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Unreachable(SendError, ConnectionError):
    """Nobody answered (refused, timed out, 5xx): worth trying again soon."""


class Broken(SendError):
    """The destination answered but serves no one (authentication failed)."""


class Refused(SendError):
    """This send was refused; ``final``: it never will be taken (given up at once)."""

    def __init__(self, kind: str, *, final: bool = False) -> None:
        super().__init__(kind)
        self.final = final


PRIVATE_ADDRESS = "private address"
"""A webhook's host resolves to an address the monitor must not reach (loopback, private, …)."""
UNSUBSCRIBED = "unsubscribed"
"""The subscriber is gone or unsubscribed before its delivery went out."""
EXPIRED = "expired"
"""A confirmation request no longer worth sending: its link would already have lapsed."""
UNAVAILABLE = "unavailable"
"""The destination's breaker is open: it failed just now, so this send waits its turn."""
NOT_CONFIGURED = "not configured"
"""An e-mail delivery with no ``[smtp]`` table, or any delivery without the signing secret."""
