"""Growing delays on wrong passwords at the browser TUI's login (HTTP Basic), per client, per user
and per known browser, in bounded memory, on an injected clock.

Without it the login took 4,000 guesses a second. Each key (the client's address; the user name
tried; a known browser's device cookie) gets ``free`` wrong guesses, then must wait ``base``
seconds before the next one is even looked at, doubling with each further wrong guess up to
``ceiling``; a right password clears the client's record. A request that comes too early is
answered 429 with ``Retry-After``, and its password is not checked (so it cannot be used to guess).

Whether someone else's guessing can lock a real user out depends on the browser it uses (OWASP,
"Slow Down Online Guessing Attacks with Device Cookies"):

- a browser holding a valid session cookie never reaches this throttle (the cookie is checked
  first), so whoever is logged in stays logged in;
- a **known browser** (one that has logged in before and holds a valid device cookie for this
  user, :mod:`monitor.tui.serve_guard`) skips the per-client and per-user limits: only its own
  record (``device`` below, the per-client policy) can slow it, and only its own wrong passwords
  fill that. During any flood the owner logs in from a known browser at once;
- a **browser never seen before** is subject to the per-user limit: a sustained flood from many
  addresses (each under the per-client limit) keeps the user's slot taken (one try every
  ``USER_CEILING`` seconds, to whoever asks first), so such a browser may get no try at all until
  the flood stops. That is the price of the per-user limit, which is what bounds a botnet's
  guesses; log in once from a browser before you need it in an incident.

Memory: at most ``max_clients`` client records and ``max_devices`` device records (the least
recently seen is dropped first: an attacker with many addresses can only push out its own entries
or old ones, and device records exist only for cookies this server signed); user names are folded
to one key per configured user (the users file holds at most a thousand) and one for every other
name, so a flood of made-up names cannot grow the table.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

CLIENT_FREE = 5
CLIENT_BASE = 1.0
CLIENT_CEILING = 300.0
USER_FREE = 20
USER_BASE = 1.0
USER_CEILING = 30.0
MAX_CLIENTS = 10_000
MAX_DEVICES = 1_000
FORGET_AFTER = 3600.0
"""A record with no wrong guess for this long is cleared."""
_OTHER = "\0other"
"""The one key of every name that is not a configured user (no user name holds a NUL)."""


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Policy:
    free: int
    base: float
    ceiling: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` wrong guesses in a row."""
        if failures < self.free:
            return 0.0
        return min(self.ceiling, self.base * 2.0 ** min(failures - self.free, 30))


class LoginThrottle:
    def __init__(
        self,
        users: str | Collection[str],
        *,
        clock: Callable[[], float],
        client_policy: Policy = Policy(CLIENT_FREE, CLIENT_BASE, CLIENT_CEILING),
        user_policy: Policy = Policy(USER_FREE, USER_BASE, USER_CEILING),
        max_clients: int = MAX_CLIENTS,
        max_devices: int = MAX_DEVICES,
    ) -> None:
        self.users = self._known(users)
        self.clock = clock
        self.client_policy = client_policy
        self.user_policy = user_policy
        self.max_clients = max_clients
        self.max_devices = max_devices
        self._clients: OrderedDict[str, _Record] = OrderedDict()
        self._devices: OrderedDict[str, _Record] = OrderedDict()
        self._users: dict[str, _Record] = {}

    def __len__(self) -> int:
        """Client records held (bounded by ``max_clients``)."""
        return len(self._clients)

    def retry_after(self, client: str, user: str, device: str | None = None) -> int:
        """Whole seconds until ``client`` may try ``user`` again; 0 when it may now.

        ``device`` is the id of a valid device cookie for ``user`` (a known browser): then only
        that device's own record counts, not the client's nor the user's."""
        now = self.clock()
        if device is not None:
            records = [self._devices.get(device)]
        else:
            records = [self._clients.get(client), self._users.get(self._user_key(user))]
        waits = [record.blocked_until - now for record in records if record is not None]
        wait = max(waits, default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, client: str, user: str, device: str | None = None) -> None:
        now = self.clock()
        if device is not None:  # a known browser's wrong password slows that browser only
            record = _touch(self._devices, device, self.max_devices, now)
            self._bump(record, self.client_policy, now)
            return
        self._bump(_touch(self._clients, client, self.max_clients, now), self.client_policy, now)
        key = self._user_key(user)
        self._bump(self._fresh(self._users.setdefault(key, _Record()), now), self.user_policy, now)

    def succeeded(self, client: str, user: str, device: str | None = None) -> None:
        self._clients.pop(client, None)
        if device is not None:
            # The owner's routine logins from a known browser do not hand a flood fresh free
            # guesses at the user.
            self._devices.pop(device, None)
            return
        self._users.pop(self._user_key(user), None)

    def set_users(self, users: str | Collection[str]) -> None:
        """The configured users changed (the users file was re-read): a removed user's record
        goes; the others' are kept (re-reading must not hand a flood fresh free guesses)."""
        self.users = self._known(users)
        for key in [key for key in self._users if key != _OTHER and key not in self.users]:
            del self._users[key]

    @staticmethod
    def _known(users: str | Collection[str]) -> frozenset[str]:
        return frozenset([users] if isinstance(users, str) else users)

    def _user_key(self, user: str) -> str:
        return user if user in self.users else _OTHER

    @staticmethod
    def _fresh(record: _Record, now: float) -> _Record:
        if record.failures and now - record.last_failure > FORGET_AFTER:
            record.failures = 0
            record.blocked_until = 0.0
        return record

    @staticmethod
    def _bump(record: _Record, policy: Policy, now: float) -> None:
        record.failures += 1
        record.last_failure = now
        record.blocked_until = max(record.blocked_until, now + policy.delay(record.failures))


def _touch(records: OrderedDict[str, _Record], key: str, limit: int, now: float) -> _Record:
    """``key``'s record, moved to the most recent end; the oldest dropped beyond ``limit``."""
    record = LoginThrottle._fresh(records.pop(key) if key in records else _Record(), now)
    records[key] = record
    while len(records) > limit:
        records.popitem(last=False)
    return record
