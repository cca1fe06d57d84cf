"""Whether a monitor leads, as the TUI judges it (#13, ARCHITECTURE §11): by watching the lease
move on the TUI's own monotonic clock, never by comparing the leader's wall clock with its own.

Unit tests of :class:`monitor.tui.fleet.LeaseWatch` on a fake clock; the app's header over a real
store is in test_fleet.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitor.store import LeaderLease
from monitor.tui.fleet import STALE_LEASE_TTLS, LeaseWatch
from shared.resilience.testing import FakeClock

TTL = 6.0
WALL = 1_747_224_000.0
LEASE = LeaderLease(
    "monitor-a", epoch=3, beat=40, acquired_at=WALL - 3600, renewed_at=WALL, ttl=TTL
)


def watched(clock: FakeClock) -> LeaseWatch:
    return LeaseWatch(clock.monotonic)


def renewed(lease: LeaderLease, renewed_at: float | None = None) -> LeaderLease:
    at = lease.renewed_at + 2 if renewed_at is None else renewed_at
    return replace(lease, beat=lease.beat + 1, renewed_at=at)


@pytest.mark.parametrize(
    "renewed_at",
    [
        pytest.param(WALL + 12, id="leader-12s-ahead"),
        pytest.param(WALL + 86400 * 365, id="far-future"),
        pytest.param(WALL - 12, id="leader-12s-behind"),
        pytest.param(0.0, id="far-past"),
    ],
)
async def test_the_leaders_wall_clock_changes_nothing(renewed_at: float) -> None:
    """A lease that moves leads and one that stands still does not, whatever time its
    leader's clock wrote (a skewed clock once made a TUI cry wolf, or hide a dead monitor)."""
    clock = FakeClock(wall_start=WALL)
    watch = watched(clock)
    lease = replace(LEASE, renewed_at=renewed_at)
    for _ in range(10):  # renewed every ttl/3, each renewal writing the same skewed time
        lead = watch.judge(lease, has_checks=True)
        assert lead is not None and not lead.stale
        await clock.advance(TTL / 3)
        lease = renewed(lease, renewed_at)
    assert lead is not None and lead.holder == "monitor-a" and lead.since == LEASE.acquired_at

    watch.judge(lease, has_checks=True)  # the last renewal; then the leader stops
    await clock.advance(STALE_LEASE_TTLS * TTL)
    lead = watch.judge(lease, has_checks=True)
    assert lead is not None and not lead.stale
    await clock.advance(0.1)
    lead = watch.judge(lease, has_checks=True)
    assert lead is not None and lead.stale


async def test_a_beat_that_stops_moving_turns_stale_after_two_ttls_and_not_before() -> None:
    clock = FakeClock(wall_start=WALL)
    watch = watched(clock)
    lease = LEASE
    assert watch.judge(lease, has_checks=True) == watch.judge(lease, has_checks=True)
    await clock.advance(TTL)
    lease = renewed(lease)  # the last renewal this TUI sees
    lead = watch.judge(lease, has_checks=True)
    assert lead is not None and not lead.stale and lead.quiet_for == 0.0

    await clock.advance(STALE_LEASE_TTLS * TTL)
    lead = watch.judge(lease, has_checks=True)
    assert lead is not None and not lead.stale, "exactly 2 x ttl: not yet"
    await clock.advance(0.01)
    lead = watch.judge(lease, has_checks=True)
    assert lead is not None and lead.stale
    assert lead.quiet_for == pytest.approx(STALE_LEASE_TTLS * TTL + 0.01)

    # It moves again (or another monitor takes over: a new epoch): leading at once.
    taken = replace(lease, holder="monitor-b", epoch=lease.epoch + 1, beat=0)
    lead = watch.judge(taken, has_checks=True)
    assert lead is not None and not lead.stale and lead.holder == "monitor-b"


async def test_a_lease_first_seen_is_not_stale_until_it_has_stood_still_for_two_ttls() -> None:
    """At start the TUI cannot know how long the lease has stood still: it watches first. The
    written renewal time (an hour old here, by the leader's clock) is not evidence."""
    clock = FakeClock(wall_start=WALL)
    watch = watched(clock)
    old = replace(LEASE, renewed_at=WALL - 3600)
    lead = watch.judge(old, has_checks=True)
    assert lead is not None and not lead.stale
    await clock.advance(STALE_LEASE_TTLS * TTL + 0.01)
    lead = watch.judge(old, has_checks=True)
    assert lead is not None and lead.stale


async def test_a_released_lease_and_checks_without_a_lease_are_stale_at_once() -> None:
    clock = FakeClock(wall_start=WALL)
    watch = watched(clock)
    lead = watch.judge(replace(LEASE, holder=""), has_checks=True)
    assert lead is not None and lead.stale and lead.holder == ""

    lead = watch.judge(None, has_checks=True)
    assert lead is not None and lead.stale and lead.quiet_for is None
    assert watch.judge(None, has_checks=False) is None


async def test_a_lease_gone_and_back_is_watched_afresh() -> None:
    clock = FakeClock(wall_start=WALL)
    watch = watched(clock)
    watch.judge(LEASE, has_checks=True)
    await clock.advance(STALE_LEASE_TTLS * TTL + 1)
    watch.judge(None, has_checks=True)
    lead = watch.judge(LEASE, has_checks=True)  # the same row back (a restored store)
    assert lead is not None and not lead.stale
