"""Password hashing with scrypt from the standard library (no extra dependency, memory-hard).

Stored form: ``scrypt$n$r$p$salt$hash`` (salt and hash in unpadded base64). The parameters travel
with each hash, so raising them later leaves old hashes verifiable; :func:`needs_rehash` tells the
login path when to store a fresh one.

Each hash costs tens of milliseconds of CPU and 16 MiB of memory on purpose: request handlers use
the ``*_async`` variants, which run it in a worker thread instead of stalling the event loop, and
go through a :class:`HashingSlots` so that a flood of logins or registrations runs at most one
hash per core at a time: the rest wait as cheap coroutines (dropped at once if their client goes
away), instead of filling the default thread pool that the database and file work also need.

The minimum length (:data:`MIN_PASSWORD_LENGTH`) is a rule for new passwords only
(:func:`check_new_password`): an account made before it can still log in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import functools
import hashlib
import hmac
import logging
import math
import os
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.resilience import SYSTEM_CLOCK, Clock, remaining

logger = logging.getLogger("backend.auth.passwords")

T = TypeVar("T")

SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 8
"""NIST SP 800-63B's floor for passwords a user chooses; no composition rules on top."""

# Bounds on parameters read back from storage: a tampered row must not make a login allocate
# gigabytes or spin for minutes.
_MAX_MEMORY = 256 * 1024 * 1024
_MAX_P = 16
_DIGEST_BYTES = range(16, 65)
_DUMMY_SALT = bytes(SALT_BYTES)


@dataclass(frozen=True, slots=True)
class _Hash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` for storage. ValueError if it is empty or too long."""
    secret = _encode(password)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "$".join(
        (SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64encode(salt), _b64encode(digest))
    )


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; never raises for bad input, only answers False.

    Pass ``stored=None`` when there is no such user: the same scrypt work is done anyway, so
    response times don't reveal which usernames exist.
    """
    try:
        secret = _encode(password)
    except ValueError:
        return False  # no stored hash can match a password hash_password would refuse
    if stored is None:
        _scrypt(secret, _DUMMY_SALT, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
        return False
    parsed = _parse(stored)
    if parsed is None:
        logger.warning(
            "a stored password hash is not in a format this backend reads",
            extra={"event": "password_hash_unreadable"},
        )
        return False
    candidate = _scrypt(secret, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.digest))
    return hmac.compare_digest(candidate, parsed.digest)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's (cheap: no scrypt run)."""
    parsed = _parse(stored)
    return parsed is None or (
        (parsed.n, parsed.r, parsed.p, len(parsed.salt), len(parsed.digest))
        != (SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES, HASH_BYTES)
    )


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in a worker thread (scrypt releases the GIL while it works)."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str | None) -> bool:
    """:func:`verify_password` in a worker thread."""
    return await asyncio.to_thread(verify_password, password, stored)


def check_new_password(password: str) -> str | None:
    """What is wrong with ``password`` as a new account's password, or None (NIST SP 800-63B:
    length only; each Unicode code point counts as one character, spaces included)."""
    length = len(password)
    if length < MIN_PASSWORD_LENGTH:
        return (
            f"must be at least {MIN_PASSWORD_LENGTH} characters (NIST SP 800-63B); "
            "a few words make a password that is long and easy to remember"
        )
    if length > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    return None


def default_hashing_slots() -> int:
    """One hash per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class HashingBusy(Exception):
    """No hashing slot within the request's budget, or too many waiting already: the caller
    answers 503 with ``Retry-After: retry_after``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many password hashes waiting; retry in {retry_after} s")
        self.retry_after = retry_after


WAITING_PER_SLOT = 16
"""Hashes that may wait per slot (each queue: urgent and other): a few seconds of work at most."""


class HashingSlots:
    """At most ``limit`` password hashes run at once; the rest wait their turn, and ``urgent``
    ones (a login from a device or network the account knows) go before the others, so a flood
    of guesses from elsewhere does not queue in front of the account's owner.

    The wait is bounded twice: at most ``max_waiting`` callers wait in each queue, and a caller
    inside a request waits no longer than what is left of the request's budget
    (:func:`shared.resilience.remaining` on ``clock``, the clock the budget is set on). Beyond
    either it gets :class:`HashingBusy` at once, rather than an answer after its client gave up.

    A slot is held until the worker thread is done, even when the request that asked is
    cancelled meanwhile (scrypt cannot be stopped halfway): the limit holds for the CPU, not
    only for the coroutines. Use it from one event loop.
    """

    def __init__(
        self,
        limit: int | None = None,
        *,
        max_waiting: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.limit = default_hashing_slots() if limit is None else limit
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        self.max_waiting = WAITING_PER_SLOT * self.limit if max_waiting is None else max_waiting
        if self.max_waiting < 0:
            raise ValueError("max_waiting must not be negative")
        self.clock = clock
        self.seconds_per_hash = 0.05
        """A running average of one hash's duration, for ``Retry-After``."""
        self.running = 0
        self.waiting = 0
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def hash(self, password: str, *, urgent: bool = False) -> str:
        """:func:`hash_password` in a worker thread, in turn."""
        return await self._run(functools.partial(hash_password, password), urgent)

    async def verify(self, password: str, stored: str | None, *, urgent: bool = False) -> bool:
        """:func:`verify_password` in a worker thread, in turn."""
        return await self._run(functools.partial(verify_password, password, stored), urgent)

    async def _run(self, work: Callable[[], T], urgent: bool) -> T:
        await self._acquire(urgent)
        started = self.clock.monotonic()

        def done(future: asyncio.Future[Any]) -> None:
            took = self.clock.monotonic() - started
            self.seconds_per_hash += (took - self.seconds_per_hash) / 8
            self._release(future)

        future = asyncio.get_running_loop().run_in_executor(None, work)
        future.add_done_callback(done)
        # shield: a cancelled caller stops waiting, the slot is freed when the thread is done.
        return await asyncio.shield(future)

    def retry_after(self) -> int:
        """Whole seconds until the queue has likely moved on (at least 1)."""
        queued = self.waiting + self.running
        return max(1, math.ceil(queued / self.limit * self.seconds_per_hash))

    async def _acquire(self, urgent: bool) -> None:
        if self.running < self.limit and not self.waiting:
            self.running += 1
            return
        queue = self._urgent if urgent else self._normal
        budget = remaining(self.clock)
        if len(queue) >= self.max_waiting or budget == 0.0:
            raise HashingBusy(self.retry_after())
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        self.waiting += 1
        try:
            if budget is None:
                await turn
            elif not await self._within(turn, budget):
                turn.cancel()  # stays queued, skipped when its turn comes
                raise HashingBusy(self.retry_after())
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.running -= 1  # handed a slot just as it was cancelled: pass it on
                self._hand_over()
            else:
                turn.cancel()  # asyncio.wait does not cancel what it waited for
            raise
        finally:
            self.waiting -= 1

    async def _within(self, turn: asyncio.Future[None], seconds: float) -> bool:
        """Whether ``turn`` came within ``seconds`` on the clock."""
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({turn, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        return turn.done()

    def _release(self, future: asyncio.Future[Any]) -> None:
        self.running -= 1
        self._hand_over()
        if not future.cancelled():
            future.exception()  # retrieved: a caller that went away leaves no warning behind

    def _hand_over(self) -> None:
        while self.running < self.limit and (self._urgent or self._normal):
            turn = (self._urgent or self._normal).popleft()
            if not turn.done():  # a cancelled waiter stays queued until its turn comes
                turn.set_result(None)
                self.running += 1


def _encode(password: str) -> bytes:
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    if not password:
        raise ValueError("password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    # NFC: the same password typed on two keyboards (composed or combining accents) must match.
    try:
        return unicodedata.normalize("NFC", password).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise ValueError("password is not valid text") from None


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        secret, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_memory(n, r, p) + 1024 * 1024
    )


def _memory(n: int, r: int, p: int) -> int:
    # What OpenSSL's scrypt allocates: the V array plus the B blocks.
    return 128 * r * (n + 2 + p)


def _parse(stored: str) -> _Hash | None:
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    n, r, p = (_small_int(part) for part in parts[1:4])
    if n is None or r is None or p is None:
        return None
    if n < 2 or n & (n - 1) or r < 1 or not 1 <= p <= _MAX_P:
        return None
    if _memory(n, r, p) > _MAX_MEMORY:
        return None
    salt, digest = _b64decode(parts[4]), _b64decode(parts[5])
    if not salt or digest is None or len(digest) not in _DIGEST_BYTES:
        return None
    return _Hash(n, r, p, salt, digest)


def _small_int(text: str) -> int | None:
    # isdecimal + isascii: int() would also accept "+8", " 8" and non-ASCII digits.
    if not (text.isascii() and text.isdecimal()) or len(text) > 10:
        return None
    return int(text)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
