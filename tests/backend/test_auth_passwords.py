"""Password hashes: format, verification, tampering, limits, rehash advice, async variants."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from backend.auth import passwords
from backend.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    HashingBusy,
    HashingSlots,
    check_new_password,
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)
from shared.resilience import request_deadline
from shared.resilience.testing import FakeClock
from tests.support.polling import eventually


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds (the slots' worker threads run on their own time)."""

    async def holds() -> bool:
        return condition()

    await eventually(holds, what, within=10.0, every=0.001)


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse battery staple")


def test_hash_format(stored: str) -> None:
    scheme, n, r, p, salt, digest = stored.split("$")

    assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
    assert len(base64.b64decode(salt + "==")) == 16
    assert len(base64.b64decode(digest + "==")) == 32


def test_right_password_verifies(stored: str) -> None:
    assert verify_password("correct horse battery staple", stored)


@pytest.mark.parametrize(
    "attempt", ["correct horse battery stapl", "Correct horse battery staple", "x", "a" * 1024]
)
def test_wrong_password_does_not_verify(stored: str, attempt: str) -> None:
    assert not verify_password(attempt, stored)


def test_salts_differ_between_hashes_of_one_password() -> None:
    first, second = hash_password("same"), hash_password("same")

    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_password("same", first)
    assert verify_password("same", second)


def test_unicode_forms_of_one_password_match() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"

    assert verify_password(decomposed, hash_password(composed))


def _swap_field(stored: str, index: int, value: str) -> str:
    parts = stored.split("$")
    parts[index] = value
    return "$".join(parts)


def _flip_first_char(text: str) -> str:
    return ("B" if text[0] == "A" else "A") + text[1:]


@pytest.mark.parametrize("index", [4, 5], ids=["salt", "digest"])
def test_tampered_salt_or_digest_does_not_verify(stored: str, index: int) -> None:
    tampered = _swap_field(stored, index, _flip_first_char(stored.split("$")[index]))

    assert not verify_password("correct horse battery staple", tampered)


def test_changed_parameters_do_not_verify(stored: str) -> None:
    assert not verify_password("correct horse battery staple", _swap_field(stored, 2, "4"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plaintext",
        "bcrypt$2b$12$whatever",
        "scrypt$16384$8$1$c2FsdA",
        "scrypt$16384$8$1$!!!$!!!",
        "scrypt$16383$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43,  # n not a power of two
        "scrypt$+16384$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43,
        "scrypt$1048576$64$1$c2FsdHNhbHRzYWx0$" + "A" * 43,  # 8 GiB: refused, not attempted
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$QUJD",  # digest too short
    ],
)
def test_malformed_stored_hash_is_false_with_a_warning(
    bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="backend.auth.passwords"):
        assert not verify_password("anything", bad)

    assert [r.getMessage() for r in caplog.records] == [
        "a stored password hash is not in a format this backend reads"
    ]
    assert needs_rehash(bad)


def test_unknown_user_costs_a_hash_and_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = passwords._scrypt

    def counting(*args: object) -> bytes:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(passwords, "_scrypt", counting)

    assert not verify_password("whatever", None)
    assert calls == [1]


@pytest.mark.parametrize("password", ["", "x" * (MAX_PASSWORD_LENGTH + 1), "\ud800"])
def test_unusable_passwords_are_refused(password: str) -> None:
    with pytest.raises(ValueError, match="password"):
        hash_password(password)
    assert not verify_password(password, hash_password("something"))


def test_longest_allowed_password_works() -> None:
    longest = "p" * MAX_PASSWORD_LENGTH

    assert verify_password(longest, hash_password(longest))


def test_needs_rehash(stored: str) -> None:
    assert not needs_rehash(stored)
    assert needs_rehash(_swap_field(stored, 1, str(2**15)))
    assert needs_rehash(_swap_field(stored, 3, "2"))


async def test_async_variants_round_trip() -> None:
    stored = await hash_password_async("in a thread")

    assert await verify_password_async("in a thread", stored)
    assert not await verify_password_async("not it", stored)
    assert not await verify_password_async("not it", None)


async def test_async_variants_run_off_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []

    def record_hash(password: str) -> str:
        threads.append(threading.get_ident())
        return "h"

    def record_verify(password: str, stored: str | None) -> bool:
        threads.append(threading.get_ident())
        return True

    monkeypatch.setattr(passwords, "hash_password", record_hash)
    monkeypatch.setattr(passwords, "verify_password", record_verify)

    await passwords.hash_password_async("x")
    await passwords.verify_password_async("x", "h")

    assert len(threads) == 2
    assert threading.get_ident() not in threads


async def test_async_hashing_leaves_the_loop_free(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hash ends only once the loop has run something else: were it run on the loop's
    # thread, the loop could not, and the hash would give up waiting.
    loop_ran = threading.Event()

    def hash_after_the_loop_ran(password: str) -> str:
        return "scrypt$done" if loop_ran.wait(5) else "the loop was blocked"

    monkeypatch.setattr(passwords, "hash_password", hash_after_the_loop_ran)
    task = asyncio.create_task(hash_password_async("in a thread"))
    asyncio.get_running_loop().call_soon(loop_ran.set)

    assert await task == "scrypt$done"


# -- new passwords (NIST SP 800-63B) -----------------------------------------------------------


@pytest.mark.parametrize(
    "password", ["", "x", "1234567", "short!!", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"]
)
def test_new_passwords_under_eight_characters_are_refused(password: str) -> None:
    problem = check_new_password(password)
    assert problem is not None and f"at least {MIN_PASSWORD_LENGTH} characters" in problem


@pytest.mark.parametrize(
    "password",
    [
        "12345678",  # no composition rules
        "password with spaces",
        "a" * 64,
        "correct horse battery staple " * 30,  # a long passphrase: 870 characters
        "\u043f\u0430\u0440\u043e\u043b\u044c\u043f\u0430\u0440",
    ],
)
def test_long_passphrases_and_any_characters_are_accepted(password: str) -> None:
    assert check_new_password(password) is None


def test_a_new_password_over_the_maximum_is_refused() -> None:
    assert check_new_password("a" * (MAX_PASSWORD_LENGTH + 1)) is not None


def test_short_passwords_made_before_the_rule_still_verify() -> None:
    assert verify_password("pw", hash_password("pw"))


# -- hashing slots -------------------------------------------------------------------------------


async def test_hashing_slots_run_at_most_their_limit_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def slow_verify(password: str, stored: str | None) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1
        return True

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    slots = HashingSlots(2)
    tasks = [asyncio.create_task(slots.verify("x", "h")) for _ in range(6)]
    await until(lambda: slots.running + slots.waiting == 6, "every caller to take or await a slot")
    assert (slots.running, slots.waiting) == (2, 4)
    release.set()
    assert await asyncio.gather(*tasks) == [True] * 6
    assert most == 2


async def test_a_cancelled_caller_keeps_its_slot_until_the_thread_is_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_hash(password: str) -> str:
        started.set()
        release.wait(10)
        return "h"

    monkeypatch.setattr(passwords, "hash_password", slow_hash)
    slots = HashingSlots(1)
    first = asyncio.create_task(slots.hash("x"))
    await asyncio.to_thread(started.wait, 10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(slots.hash("y"))
    await until(lambda: slots.running + slots.waiting == 2, "the second caller to arrive")
    assert (slots.running, slots.waiting) == (1, 1)  # scrypt still runs for the first
    release.set()
    assert await second == "h"
    assert slots.running == 0


def test_hashing_slots_need_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HashingSlots(0)


async def test_urgent_hashes_go_before_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    gates = {name: threading.Event() for name in ["first", "guess-1", "guess-2", "owner"]}
    order: list[str] = []

    def gated_verify(password: str, stored: str | None) -> bool:
        order.append(password)
        gates[password].wait(10)
        return True

    monkeypatch.setattr(passwords, "verify_password", gated_verify)
    slots = HashingSlots(1)
    first = asyncio.create_task(slots.verify("first", "h"))
    await until(lambda: slots.running == 1, "the first hash to take the slot")
    guesses = [asyncio.create_task(slots.verify(f"guess-{n}", "h")) for n in (1, 2)]
    await until(lambda: slots.waiting == 2, "both guesses to queue")
    owner = asyncio.create_task(slots.verify("owner", "h", urgent=True))
    await until(lambda: slots.waiting == 3, "the owner to queue after the guesses")
    assert (slots.running, slots.waiting) == (1, 3)
    for gate in gates.values():
        gate.set()
    await asyncio.gather(first, owner, *guesses)
    assert order == ["first", "owner", "guess-1", "guess-2"]


async def test_a_waiter_cancelled_in_the_queue_gives_up_its_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def slow_verify(password: str, stored: str | None) -> bool:
        release.wait(10)
        return True

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    slots = HashingSlots(1)
    running = asyncio.create_task(slots.verify("a", "h"))
    queued = asyncio.create_task(slots.verify("b", "h"))
    await until(lambda: (slots.running, slots.waiting) == (1, 1), "the second hash to queue")
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert slots.waiting == 0
    release.set()
    assert await running
    assert await slots.verify("c", "h")
    assert (slots.running, slots.waiting) == (0, 0)


@pytest.fixture
def blocked_verify(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """verify_password held in its thread until the event is set (set again at the end)."""
    release = threading.Event()

    def held(password: str, stored: str | None) -> bool:
        release.wait(10)
        return True

    monkeypatch.setattr(passwords, "verify_password", held)
    yield release
    release.set()


async def test_beyond_max_waiting_a_hash_is_refused_at_once(
    blocked_verify: threading.Event,
) -> None:
    slots = HashingSlots(1, max_waiting=2)
    tasks = [asyncio.create_task(slots.verify(f"p{n}", "h")) for n in range(3)]
    await until(lambda: slots.running + slots.waiting == 3, "every caller to take or await a slot")
    assert (slots.running, slots.waiting) == (1, 2)
    with pytest.raises(HashingBusy) as refused:
        await asyncio.wait_for(slots.verify("one too many", "h"), 5)
    assert refused.value.retry_after >= 1
    # The owner's queue is separate: a flood of guesses does not fill it.
    owner = asyncio.create_task(slots.verify("owner", "h", urgent=True))
    await until(lambda: slots.waiting == 3, "the owner to queue past the full queue of guesses")
    blocked_verify.set()
    assert await asyncio.gather(*tasks, owner) == [True] * 4


async def test_a_hash_waits_no_longer_than_the_request_budget(
    blocked_verify: threading.Event,
) -> None:
    clock = FakeClock()
    slots = HashingSlots(1, clock=clock)
    running = asyncio.create_task(slots.verify("first", "h"))
    await until(lambda: slots.running == 1, "the first hash to take the slot")

    async def in_a_request() -> bool:
        with request_deadline(2.0, clock=clock):
            return await slots.verify("second", "h")

    waiting = asyncio.create_task(in_a_request())
    await until(lambda: slots.waiting == 1, "the second hash to queue")
    await clock.advance(1.9)
    assert not waiting.done()
    await clock.advance(0.1)
    await until(waiting.done, "the queued hash to give up at the request's budget")
    with pytest.raises(HashingBusy):
        await waiting
    assert (slots.running, slots.waiting) == (1, 0)
    # The budget already spent: refused without queueing.
    with request_deadline(1.0, clock=clock):
        await clock.advance(1.0)
        with pytest.raises(HashingBusy):
            await slots.verify("late", "h")
    # The given-up turn is skipped, the slot passes on, nothing leaks.
    blocked_verify.set()
    assert await running
    assert await slots.verify("third", "h")
    assert (slots.running, slots.waiting) == (0, 0)
