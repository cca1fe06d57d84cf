"""The login throttle (``backend.auth.throttle``) on a FakeClock: growing delays, no lockout of a
trusted requester, bounded memory, and the client networks it counts by."""

from __future__ import annotations

import pytest

from backend.auth.throttle import (
    Backoff,
    LoginLimits,
    LoginThrottle,
    RateThrottle,
    RecentSet,
    StrikeTable,
    client_network,
)
from shared.resilience.testing import FakeClock

ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"

LIMITS = LoginLimits(
    per_pair=Backoff(free=3, base=1.0, ceiling=60.0, forget_after=600.0),
    per_client=Backoff(free=10, base=1.0, ceiling=60.0, forget_after=600.0),
    per_account=Backoff(free=5, base=2.0, ceiling=60.0, forget_after=600.0),
    trust_for=3600.0,
    capacity=1000,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(clock.monotonic, LIMITS)


def fail(throttle: LoginThrottle, account: str, client: str, device: str | None = None) -> bool:
    """A login with a wrong password; False if the throttle refused it."""
    return throttle.begin(throttle.attempt(account, client, device)).allowed


def succeed(throttle: LoginThrottle, account: str, client: str) -> bool:
    """A login with the right password; False if the throttle refused it."""
    attempt = throttle.attempt(account, client)
    if not throttle.begin(attempt).allowed:
        return False
    throttle.succeeded(attempt)
    return True


def fail_until_refused(throttle: LoginThrottle, account: str, client: str) -> int:
    """Failed attempts made before the throttle refused the next one."""
    for made in range(1000):
        if not fail(throttle, account, client):
            return made
    raise AssertionError("never refused")


def test_backoff_doubles_after_the_free_failures_up_to_the_ceiling() -> None:
    backoff = Backoff(free=2, base=1.0, ceiling=10.0, forget_after=0.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 10, 10]
    assert backoff.delay(10**6) == 10.0  # no overflow


@pytest.mark.parametrize(
    "bad",
    [
        {"free": -1, "base": 1.0, "ceiling": 2.0, "forget_after": 0.0},
        {"free": 1, "base": 0.0, "ceiling": 2.0, "forget_after": 0.0},
        {"free": 1, "base": 3.0, "ceiling": 2.0, "forget_after": 0.0},
    ],
)
def test_backoff_refuses_unusable_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**bad)  # type: ignore[arg-type]


async def test_guesses_meet_growing_delays(clock: FakeClock, throttle: LoginThrottle) -> None:
    assert fail_until_refused(throttle, "alice", ATTACKER) == 4  # 3 free, the 4th sets a delay
    waits = []
    for _ in range(5):
        verdict = throttle.check(throttle.attempt("alice", ATTACKER))
        assert not verdict.allowed and verdict.limit == "pair"
        waits.append(verdict.wait)
        await clock.advance(verdict.wait)
        assert fail(throttle, "alice", ATTACKER)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]


async def test_refused_attempts_do_not_count(clock: FakeClock, throttle: LoginThrottle) -> None:
    fail_until_refused(throttle, "alice", ATTACKER)
    for _ in range(100):
        assert not throttle.check(throttle.attempt("alice", ATTACKER)).allowed
    await clock.advance(1.0)
    assert throttle.check(throttle.attempt("alice", ATTACKER)).allowed


async def test_a_success_clears_the_requesters_own_count(
    clock: FakeClock, throttle: LoginThrottle
) -> None:
    for _ in range(3):
        assert fail(throttle, "alice", OWNER)
    assert succeed(throttle, "alice", OWNER)
    assert fail_until_refused(throttle, "alice", OWNER) == 4


async def test_counts_are_forgotten_after_a_quiet_spell(
    clock: FakeClock, throttle: LoginThrottle
) -> None:
    fail_until_refused(throttle, "alice", ATTACKER)
    await clock.advance(1.0 + 600.0)
    assert fail_until_refused(throttle, "alice", ATTACKER) == 4


def test_the_owner_on_a_known_network_gets_in_during_a_flood(throttle: LoginThrottle) -> None:
    assert succeed(throttle, "alice", OWNER)  # logged in from here before
    # A botnet: many addresses, a few guesses each, all at alice.
    for bot in range(50):
        for _ in range(2):
            fail(throttle, "alice", f"10.0.{bot}.1")
    newcomer = throttle.check(throttle.attempt("alice", "192.0.2.99"))
    assert not newcomer.allowed and newcomer.limit == "account"
    assert throttle.check(throttle.attempt("alice", OWNER)).allowed
    # Another account is not affected by alice's flood.
    assert throttle.check(throttle.attempt("bob", "192.0.2.99")).allowed


def test_the_owner_with_a_device_cookie_gets_in_from_a_new_network(
    throttle: LoginThrottle,
) -> None:
    for bot in range(50):
        fail(throttle, "alice", f"10.0.{bot}.1")
    assert not throttle.check(throttle.attempt("alice", "192.0.2.50")).allowed
    assert throttle.check(throttle.attempt("alice", "192.0.2.50", device="dev-1")).allowed


def test_an_attacker_on_the_owners_network_does_not_lock_out_the_device(
    throttle: LoginThrottle,
) -> None:
    fail_until_refused(throttle, "alice", OWNER)  # same NAT address as the owner
    assert throttle.check(throttle.attempt("alice", OWNER, device="dev-1")).allowed


def test_trusted_failures_do_not_lock_the_account_for_others(throttle: LoginThrottle) -> None:
    assert succeed(throttle, "alice", OWNER)
    for _ in range(3):
        # The owner mistypes three times (within the free pair failures), then gets it right.
        for _ in range(3):
            assert fail(throttle, "alice", OWNER)
        assert succeed(throttle, "alice", OWNER)
    assert throttle.check(throttle.attempt("alice", "192.0.2.99")).allowed


def test_a_client_spraying_usernames_runs_out_of_budget(throttle: LoginThrottle) -> None:
    for n in range(11):
        assert fail(throttle, f"user{n}", ATTACKER)
    verdict = throttle.check(throttle.attempt("someone-new", ATTACKER))
    assert not verdict.allowed and verdict.limit == "client"
    assert verdict.retry_after == 1
    assert throttle.check(throttle.attempt("someone-new", OWNER)).allowed


def test_look_up_cost_memory_is_bounded(clock: FakeClock) -> None:
    throttle = LoginThrottle(clock.monotonic, LoginLimits(capacity=100))
    for n in range(5000):
        fail(throttle, f"sprayed-{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        succeed(throttle, f"sprayed-{n}", f"192.0.{n // 256 % 256}.{n % 256}")
    assert all(size <= 100 for size in throttle.sizes().values()), throttle.sizes()


def test_concurrent_guesses_count_before_any_of_them_ends(throttle: LoginThrottle) -> None:
    # Begun but not finished (their hashes still running): each already counts.
    begun = [throttle.attempt("alice", ATTACKER) for _ in range(10)]
    allowed = [throttle.begin(attempt).allowed for attempt in begun]
    assert allowed == [True] * 4 + [False] * 6


def test_a_success_takes_back_its_own_provisional_failure(throttle: LoginThrottle) -> None:
    for n in range(20):  # an untrusted network logs in to many accounts, all successfully
        assert succeed(throttle, f"user{n}", ATTACKER)
    assert throttle.check(throttle.attempt("someone", ATTACKER)).allowed
    for n in range(20):  # alice logs in from twenty new places, first time everywhere
        assert succeed(throttle, "alice", f"192.0.2.{n}")
    assert throttle.check(throttle.attempt("alice", "192.0.2.99")).allowed


def test_an_abandoned_attempt_is_not_a_failure(throttle: LoginThrottle) -> None:
    for _ in range(30):  # the database is down: nothing can be judged
        attempt = throttle.attempt("alice", ATTACKER)
        assert throttle.begin(attempt).allowed
        throttle.abandon(attempt)
    assert throttle.sizes() == {"pairs": 0, "clients": 0, "accounts": 0, "known": 0}


async def test_a_full_strike_table_evicts_only_ended_delays(clock: FakeClock) -> None:
    table: StrikeTable[str] = StrikeTable(
        Backoff(free=0, base=5.0, ceiling=40.0, forget_after=100.0),
        capacity=2,
        monotonic=clock.monotonic,
    )
    table.strike("a")  # waits 5 s
    table.strike("b")  # waits 5 s
    await clock.advance(5.0)
    table.strike("a")  # a's second: waits 10 s; b's delay has ended
    table.strike("c")  # room made by evicting b, not a (the least recently struck)
    assert table.failures("a") == 2 and table.failures("b") == 0 and table.failures("c") == 1
    # Both delays running: a new key waits until the first of them ends, and is not counted.
    assert table.wait("d") == 5.0
    assert table.strike("d") == 5.0 and table.failures("d") == 0
    assert table.failures("a") == 2 and table.failures("c") == 1
    # ...unless admitted (a trusted requester): the first-ending entry gives way.
    table.strike("d", admit=True)
    assert table.failures("d") == 1 and table.failures("c") == 0 and table.failures("a") == 2
    await clock.advance(200.0)
    table.strike("e")  # forgotten entries make room
    assert table.failures("e") == 1 and table.failures("a") == 0


async def test_a_spray_of_networks_cannot_push_an_accounts_count_out(clock: FakeClock) -> None:
    """The attacker fills every table with new IPv6 /64s and usernames, hoping to evict alice's
    per-account count (and get its free guesses again): it stays, and while the tables are full
    of running delays new requesters are refused — but alice's own device still gets in."""
    limits = LoginLimits(
        per_pair=Backoff(free=3, base=1.0, ceiling=60.0, forget_after=600.0),
        per_client=Backoff(free=0, base=30.0, ceiling=60.0, forget_after=600.0),
        per_account=Backoff(free=5, base=30.0, ceiling=60.0, forget_after=600.0),
        trust_for=3600.0,
        capacity=50,
    )
    throttle = LoginThrottle(clock.monotonic, limits)
    assert succeed(throttle, "alice", OWNER)  # the owner's network is known for alice
    for n in range(6):
        fail(throttle, "alice", f"2001:db8:{n}::1")
    refused = throttle.check(throttle.attempt("alice", "2001:db8:ffff::1"))
    assert not refused.allowed and refused.limit == "account"

    # The spray: 5,000 fresh /64s, each guessing a fresh username.
    for n in range(5000):
        fail(throttle, f"sprayed-{n}", f"2001:db8:1:{n:x}::1")
    assert all(size <= 50 for size in throttle.sizes().values()), throttle.sizes()
    still = throttle.check(throttle.attempt("alice", "2001:db8:fffe::1"))
    assert not still.allowed, "alice's count was evicted: the guesser has free guesses again"
    newcomer = throttle.check(throttle.attempt("bob", "2001:db8:eeee::1"))
    assert not newcomer.allowed and newcomer.limit == "busy"
    # Trusted requesters never meet a full table.
    assert succeed(throttle, "alice", OWNER)
    # Once the delays end, the tables take new keys again.
    await clock.advance(61.0)
    assert throttle.check(throttle.attempt("bob", "2001:db8:eeee::1")).allowed


async def test_recent_set_expires_and_is_bounded(clock: FakeClock) -> None:
    known: RecentSet[str] = RecentSet(60.0, capacity=2, monotonic=clock.monotonic)
    known.add("a")
    await clock.advance(59.0)
    assert known.seen("a")
    await clock.advance(1.0)
    assert not known.seen("a")
    known.add("b")
    known.add("c")
    known.add("d")
    assert len(known) == 2 and not known.seen("b")


async def test_rate_throttle_counts_every_attempt(clock: FakeClock) -> None:
    registrations = RateThrottle(
        Backoff(free=2, base=1.0, ceiling=8.0, forget_after=60.0), clock.monotonic
    )
    for _ in range(2):
        assert registrations.check(ATTACKER).allowed
        registrations.count(ATTACKER)
    registrations.count(ATTACKER)
    assert registrations.check(ATTACKER).wait == 1.0
    assert registrations.check(OWNER).allowed


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
        ("x" * 500, "x" * 64),
    ],
)
def test_client_networks(address: str, network: str) -> None:
    assert client_network(address) == network


def test_an_ipv6_attacker_cannot_rotate_through_its_64(throttle: LoginThrottle) -> None:
    for n in range(1, 40):
        fail(throttle, "alice", f"2001:db8:1:2::{n:x}")
    assert not throttle.check(throttle.attempt("alice", "2001:db8:1:2::ffff")).allowed
