"""Slowing down password guessing without locking the real user out.

The scheme is OWASP's "Slow Down Online Guessing Attacks with Device Cookies": failed logins are
counted in three places, each with delays that double after a few free failures.

- **per (account, requester)**: the requester is the device, when the request carries a valid
  device cookie for that account, else the client's network. Always applies: it slows the
  guessing of one account from one place, and a user's own typos.
- **per client network, across accounts**: a budget for one client spraying many usernames.
- **per account, from untrusted requesters only**: a guesser who spreads over many addresses.

A requester is *trusted* for an account when it holds a valid device cookie for it (issued on a
successful login; see :mod:`backend.auth.device_cookie`) or when its network logged in to that
account successfully within ``trust_for``. Trusted requesters skip the per-account and the
per-client limits, and their failures do not count towards them: a flood against an account
turns away new devices with 429s, while its owner on a known device still gets in. Rejected
attempts are not counted (their answer is a cheap 429 computed before any password hashing), so a
flood cannot push the owner's delays up either.

Client networks: an IPv4 address, or an IPv6 /64 (one subscriber usually holds a whole /64, so
counting single IPv6 addresses would hand an attacker 2**64 fresh budgets).

Memory is bounded: every table keeps at most ``capacity`` entries, and an entry is forgotten
once its delay has passed and ``forget_after`` more seconds went by without a failure. A full
failure table makes room by evicting the entry whose delay ended longest ago, never one whose
delay is still running: otherwise a spray of new keys (many IPv6 /64s, many usernames) would push
a target's count out and buy fresh free guesses. When every entry's delay is running, a *new*
key is refused until the soonest one ends (fail closed: the flood's own entries are what fills
the table), except for a trusted requester, whose pair always gets in. Accounts are held as
16-byte digests, not as names.

**Per replica, in memory — on purpose.** The check runs before the database is touched, so a
flood of guesses costs no queries and no writes, and throttling keeps working while the database
is down or overloaded (exactly when a flood hurts most). The price: behind a load balancer with
N replicas a guesser gets up to N times the free failures; as delays double, that is log2(N)
extra doublings, a small constant. Known-network trust is also per replica, which is why the
device cookie exists: it is signed with a key derived from the backend's signing key, so every
replica that shares the key accepts it. A restart forgets the counts (and gives a guesser a few
free tries again), which the ceilings keep cheap.

Nothing here imports the backend: time is a ``monotonic()`` callable, keys are strings.
"""

from __future__ import annotations

import hashlib
import heapq
import ipaddress
import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DAY = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays after failures: none for the first ``free``, then ``base`` doubling up to
    ``ceiling``; the count starts over after ``forget_after`` quiet seconds past the delay."""

    free: int
    base: float
    ceiling: float
    forget_after: float

    def __post_init__(self) -> None:
        if self.free < 0 or not 0 < self.base <= self.ceiling or self.forget_after < 0:
            raise ValueError(f"not a usable backoff: {self!r}")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row."""
        over = failures - self.free - 1
        if over < 0:
            return 0.0
        # The exponent is capped: 2**1100 is past what a float holds.
        return min(self.base * 2.0 ** min(over, 64), self.ceiling)


class _Strikes:
    __slots__ = ("count", "last", "until")

    def __init__(self, count: int, last: float, until: float) -> None:
        self.count = count
        self.last = last
        self.until = until


class StrikeTable(Generic[K]):
    """Failure counts by key with :class:`Backoff` delays, in a bounded table that never evicts
    an entry whose delay is running (see the module)."""

    def __init__(self, backoff: Backoff, *, capacity: int, monotonic: Callable[[], float]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.backoff = backoff
        self.capacity = capacity
        self._now = monotonic
        self._entries: OrderedDict[K, _Strikes] = OrderedDict()
        # (until, tie-breaker, key) for every change of an entry's ``until``; stale items (the
        # entry is gone or has another ``until`` now) are skipped when met at the top.
        self._ends: list[tuple[float, int, K]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def wait(self, key: K, *, admit: bool = False) -> float:
        """Seconds before ``key`` may try again; 0.0 when it may now. A key not in the table
        waits for room when the table is full of running delays, unless ``admit``."""
        entry = self._entries.get(key)
        now = self._now()
        if entry is None:
            return 0.0 if admit else self._room_wait(now)
        return max(0.0, entry.until - now)

    def failures(self, key: K) -> int:
        """Failures counted against ``key`` (0 once forgotten)."""
        entry = self._entries.get(key)
        if entry is None or self._forgotten(entry, self._now()):
            return 0
        return entry.count

    def strike(self, key: K, *, admit: bool = False) -> float:
        """Count a failure against ``key``; returns the wait it now has. A new key finding the
        table full of running delays is not counted (its :meth:`wait` said so) unless
        ``admit``, which then evicts the entry whose delay ends first."""
        now = self._now()
        self._prune(now)
        entry = self._entries.get(key)
        if entry is None or self._forgotten(entry, now):
            if entry is None and len(self._entries) >= self.capacity:
                room = self._room_wait(now)
                if room > 0 and not admit:
                    return room
                self._evict_first_ending()
            entry = _Strikes(0, now, now)
            self._entries[key] = entry
        entry.count += 1
        entry.last = now
        self._set_until(key, entry, now + self.backoff.delay(entry.count))
        self._entries.move_to_end(key)
        return entry.until - now

    def clear(self, key: K) -> None:
        self._entries.pop(key, None)

    def refund(self, key: K) -> None:
        """Take back one failure of ``key`` (counted for an attempt that turned out well)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.count -= 1
        if entry.count <= 0:
            del self._entries[key]
        else:
            self._set_until(key, entry, entry.last + self.backoff.delay(entry.count))

    def _set_until(self, key: K, entry: _Strikes, until: float) -> None:
        entry.until = until
        heapq.heappush(self._ends, (until, next(self._order), key))
        if len(self._ends) > 2 * self.capacity:  # half stale: rebuild (O(1) a push, amortised)
            self._ends = [(e.until, next(self._order), k) for k, e in self._entries.items()]
            heapq.heapify(self._ends)

    def _first_ending(self) -> tuple[float, K] | None:
        """The entry whose delay ends (or ended) first: its ``until`` and key."""
        while self._ends:
            until, _, key = self._ends[0]
            entry = self._entries.get(key)
            if entry is not None and entry.until == until:
                return until, key
            heapq.heappop(self._ends)
        return None

    def _room_wait(self, now: float) -> float:
        """0.0 when a new key fits now, else seconds until the first running delay ends."""
        if len(self._entries) < self.capacity:
            return 0.0
        first = self._first_ending()
        return 0.0 if first is None else max(0.0, first[0] - now)

    def _evict_first_ending(self) -> None:
        first = self._first_ending()
        if first is not None:
            del self._entries[first[1]]

    def _forgotten(self, entry: _Strikes, now: float) -> bool:
        return now >= entry.until + self.backoff.forget_after

    def _prune(self, now: float) -> None:
        # The oldest strikes sit in front; a few forgotten ones go on every write, so idle
        # entries leave without a sweep of the whole table.
        for _ in range(2):
            if not self._entries:
                return
            key, entry = next(iter(self._entries.items()))
            if not self._forgotten(entry, now):
                return
            del self._entries[key]


class RecentSet(Generic[K]):
    """Keys seen within ``ttl`` seconds, in a bounded LRU table."""

    def __init__(self, ttl: float, *, capacity: int, monotonic: Callable[[], float]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.ttl = ttl
        self.capacity = capacity
        self._now = monotonic
        self._seen: OrderedDict[K, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: K) -> bool:
        """Whether ``key`` was added within ``ttl`` seconds."""
        seen = self._seen.get(key)
        return seen is not None and self._now() - seen < self.ttl

    def add(self, key: K) -> None:
        self._seen[key] = self._now()
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_pair: Backoff = Backoff(free=5, base=1.0, ceiling=900.0, forget_after=3600.0)
    """One account from one requester (device or network)."""
    per_client: Backoff = Backoff(free=20, base=1.0, ceiling=900.0, forget_after=3600.0)
    """One network across all accounts, untrusted attempts only."""
    per_account: Backoff = Backoff(free=10, base=1.0, ceiling=300.0, forget_after=3600.0)
    """One account from every untrusted requester together."""
    trust_for: float = 30 * DAY
    """How long a network that logged in to an account stays trusted for it."""
    capacity: int = 20_000
    """Entries per table. Four tables; all four full hold about 20 MB (measured: ~250 bytes an
    entry, with the LRU links and the dictionary's spare room)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login attempt, as the throttle sees it (from :meth:`LoginThrottle.attempt`)."""

    account: bytes
    network: str
    pair: bytes
    """Digest of (account, requester)."""
    known_as: bytes
    """Digest of (account, network): the key of the known-network trust."""
    trusted: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """``wait`` seconds before the attempt may be made (0.0: go ahead), and which limit."""

    wait: float
    limit: str | None = None
    """``"account"``, ``"client"`` or ``"pair"``: the limit that asks for the longest wait;
    ``"busy"`` when it is a full table's (every entry's delay running) that a new key waits for."""

    @property
    def allowed(self) -> bool:
        return self.wait <= 0.0

    @property
    def retry_after(self) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(self.wait))


class LoginThrottle:
    """Per-(account, requester), per-client and per-account login throttling (see the module)."""

    def __init__(self, monotonic: Callable[[], float], limits: LoginLimits | None = None) -> None:
        self.limits = limits = limits or LoginLimits()
        size = limits.capacity
        self._pairs: StrikeTable[bytes] = StrikeTable(
            limits.per_pair, capacity=size, monotonic=monotonic
        )
        self._clients: StrikeTable[str] = StrikeTable(
            limits.per_client, capacity=size, monotonic=monotonic
        )
        self._accounts: StrikeTable[bytes] = StrikeTable(
            limits.per_account, capacity=size, monotonic=monotonic
        )
        self._known: RecentSet[bytes] = RecentSet(
            limits.trust_for, capacity=size, monotonic=monotonic
        )

    def attempt(self, account: str, client_address: str, device: str | None = None) -> Attempt:
        """Describe an attempt on ``account`` (its unique key) from ``client_address``;
        ``device`` is the id of a device cookie already verified for this account, if any."""
        digest = account_digest(account)
        network = client_network(client_address)
        known_as = _digest(b"net\0" + digest + network.encode())
        trusted = device is not None or self._known.seen(known_as)
        requester = f"device\0{device}" if device is not None else f"net\0{network}"
        pair = _digest(digest + requester.encode("utf-8", "surrogatepass"))
        return Attempt(digest, network, pair, known_as, trusted)

    def check(self, attempt: Attempt) -> Verdict:
        """Whether ``attempt`` may go ahead now; cheap, so it runs before any password hashing."""
        pair_wait = self._pairs.wait(attempt.pair, admit=attempt.trusted)
        verdict = Verdict(pair_wait, "pair" if attempt.pair in self._pairs else "busy")
        if not attempt.trusted:
            for wait, known, limit in (
                (self._clients.wait(attempt.network), attempt.network in self._clients, "client"),
                (
                    self._accounts.wait(attempt.account),
                    attempt.account in self._accounts,
                    "account",
                ),
            ):
                if wait > verdict.wait:
                    verdict = Verdict(wait, limit if known else "busy")
        return verdict if not verdict.allowed else Verdict(0.0)

    def begin(self, attempt: Attempt) -> Verdict:
        """:meth:`check`, and when the attempt may go ahead, count it as failed at once, until
        :meth:`succeeded` says otherwise: a burst of concurrent guesses sees its own failures
        before the first password hash has finished, not after."""
        verdict = self.check(attempt)
        if verdict.allowed:
            self._pairs.strike(attempt.pair, admit=attempt.trusted)
            if not attempt.trusted:
                self._clients.strike(attempt.network)
                self._accounts.strike(attempt.account)
        return verdict

    def succeeded(self, attempt: Attempt) -> None:
        """A begun attempt had the right password: its failure is taken back, the requester's
        own count starts over, and its network is known for the account from now on."""
        self._pairs.clear(attempt.pair)
        if not attempt.trusted:
            self._clients.refund(attempt.network)
            self._accounts.refund(attempt.account)
        self._known.add(attempt.known_as)

    def abandon(self, attempt: Attempt) -> None:
        """A begun attempt that could not be judged (the database was down): not a failure."""
        self._pairs.refund(attempt.pair)
        if not attempt.trusted:
            self._clients.refund(attempt.network)
            self._accounts.refund(attempt.account)

    def sizes(self) -> dict[str, int]:
        """Entries per table (for tests and metrics)."""
        return {
            "pairs": len(self._pairs),
            "clients": len(self._clients),
            "accounts": len(self._accounts),
            "known": len(self._known),
        }


class RateThrottle:
    """Attempts per client network with :class:`Backoff` delays counted on every attempt, not
    only failures: for work that costs the server whatever its outcome (a registration hashes
    a password)."""

    def __init__(
        self, backoff: Backoff, monotonic: Callable[[], float], *, capacity: int = 20_000
    ) -> None:
        self._table: StrikeTable[str] = StrikeTable(backoff, capacity=capacity, monotonic=monotonic)

    def check(self, client_address: str) -> Verdict:
        wait = self._table.wait(client_network(client_address))
        return Verdict(wait, "client") if wait > 0 else Verdict(0.0)

    def count(self, client_address: str) -> None:
        self._table.strike(client_network(client_address))

    def __len__(self) -> int:
        return len(self._table)


def account_digest(account: str) -> bytes:
    """16 bytes standing for ``account`` in the tables (bounded size, no names in memory)."""
    return _digest(account.encode("utf-8", "surrogatepass"))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def client_network(address: str) -> str:
    """The network a client address is counted as: the IPv4 address, or the IPv6 /64 (an
    IPv4-mapped IPv6 address counts as its IPv4 address). Anything else (a Unix socket's
    path, a test client's name) is taken as it is, cut to 64 characters."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
