"""Growing delays on wrong passwords at the browser TUI's login (HTTP Basic), per client and per
user, in bounded memory, on an injected clock.

Without it the login took 4,000 guesses a second. Each key (the client's address; the user name
tried) gets ``free`` wrong guesses, then must wait ``base`` seconds before the next one is even
looked at, doubling with each further wrong guess up to ``ceiling``; a right password clears the
client's record. A request that comes too early is answered 429 with ``Retry-After``, and its
password is not checked (so it cannot be used to guess).

A real user is not locked out by someone else's guessing:

- a browser holding a valid session cookie never reaches this throttle (the cookie is checked
  first), so whoever is logged in stays logged in;
- the per-user throttle is looser than the per-client one (``USER_FREE`` guesses, a shorter
  ceiling): a flood from many addresses slows the user's logins to one try every
  ``USER_CEILING`` seconds at worst, never to none.

Memory: at most ``max_clients`` client records (the least recently seen is dropped first, an
attacker with many addresses can only push out its own entries or old ones), and user names are
folded to two keys: the configured user, and everything else.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

CLIENT_FREE = 5
CLIENT_BASE = 1.0
CLIENT_CEILING = 300.0
USER_FREE = 20
USER_BASE = 1.0
USER_CEILING = 30.0
MAX_CLIENTS = 10_000
FORGET_AFTER = 3600.0
"""A record with no wrong guess for this long is cleared."""


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
        user: str,
        *,
        clock: Callable[[], float],
        client_policy: Policy = Policy(CLIENT_FREE, CLIENT_BASE, CLIENT_CEILING),
        user_policy: Policy = Policy(USER_FREE, USER_BASE, USER_CEILING),
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.user = user
        self.clock = clock
        self.client_policy = client_policy
        self.user_policy = user_policy
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Record] = OrderedDict()
        self._users: dict[str, _Record] = {}

    def __len__(self) -> int:
        """Client records held (bounded by ``max_clients``)."""
        return len(self._clients)

    def retry_after(self, client: str, user: str) -> int:
        """Whole seconds until ``client`` may try ``user`` again; 0 when it may now."""
        now = self.clock()
        waits = [
            record.blocked_until - now
            for record in (self._clients.get(client), self._users.get(self._user_key(user)))
            if record is not None
        ]
        wait = max(waits, default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, client: str, user: str) -> None:
        now = self.clock()
        self._bump(self._client_record(client, now), self.client_policy, now)
        key = self._user_key(user)
        self._bump(self._fresh(self._users.setdefault(key, _Record()), now), self.user_policy, now)

    def succeeded(self, client: str, user: str) -> None:
        self._clients.pop(client, None)
        self._users.pop(self._user_key(user), None)

    def _user_key(self, user: str) -> str:
        return "user" if user == self.user else "other"

    def _client_record(self, client: str, now: float) -> _Record:
        record = self._clients.pop(client, None) or _Record()
        self._clients[client] = self._fresh(record, now)  # to the most recent end
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return self._clients[client]

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
