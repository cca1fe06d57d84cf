"""What stands between the login and registration routes and a flood (see ``backend.api.accounts``).

One instance per app, built by the composition root with the app's clock: the throttles (in
memory, per replica: :mod:`backend.auth.throttle` says why) and the hashing slots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from backend.auth.device_cookie import DeviceCookies
from backend.auth.passwords import HashingSlots
from backend.auth.throttle import Backoff, LoginLimits, LoginThrottle, RateThrottle
from shared.resilience import SYSTEM_CLOCK, Clock

REGISTRATIONS = Backoff(free=20, base=1.0, ceiling=600.0, forget_after=3600.0)
"""Registrations from one network: 20 at once, then doubling delays (each one hashes a password,
whatever its outcome)."""


@dataclass
class AccountDefences:
    logins: LoginThrottle
    registrations: RateThrottle
    hashing: HashingSlots = field(default_factory=HashingSlots)
    cookies: DeviceCookies | None = None
    """Set once the signing keys are loaded (their secret signs the cookies)."""

    @classmethod
    def create(
        cls,
        monotonic: Callable[[], float],
        *,
        limits: LoginLimits | None = None,
        registrations: Backoff = REGISTRATIONS,
        hashing_slots: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> AccountDefences:
        """``clock`` is the one the request budget is set on: a hash waits for a slot at most
        what is left of it."""
        return cls(
            LoginThrottle(monotonic, limits),
            RateThrottle(registrations, monotonic),
            HashingSlots(hashing_slots, clock=clock),
        )
