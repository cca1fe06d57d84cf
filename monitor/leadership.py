"""Which of several monitors on one store leads: a lease row with a fencing epoch (§11).

Each ``questcity monitor`` runs a :class:`Leadership` role loop. It stands by until it may take
the lease, then leads: it builds a fresh daemon whose every write is fenced by the lease's epoch
and starts it, and renews the lease every ttl/3 until it stops or loses the lease.

- **Standby** reads the lease every ttl/4 and takes it over when it has seen neither its holder,
  epoch nor beat move for the lease's ttl *on its own monotonic clock* (the monitors' clocks
  need not agree), at once when the holder is empty (a leader that stopped cleanly released it)
  or when there is no lease yet. Taking over is a compare-and-swap on what it saw: of two
  standbys, one wins.
- **Leader** renews every ttl/3. The lease is lost when a renewal finds it taken (renew answers
  None), when a fenced write of the daemon finds it taken (``on_lease_lost``), or when no
  renewal has succeeded for ttl (the store is unreachable: a standby that can reach it takes over
  after the same ttl, so the two never lead at once for long, and the fence refuses the old
  leader's writes meanwhile). Its daemon is stopped at once and the monitor stands by again.
- **Stopping** (SIGTERM, SIGINT): a leader stops its daemon first, renewing meanwhile (the checks
  in flight finish, the writer flushes), and then releases the lease, so a standby takes over
  within ttl/4 rather than ttl.

Each change of role is logged (``leader`` / ``standby``, event ``monitor_role``, with the
monitor's id and the lease's epoch). Time is read and waited on through an injected
:class:`~shared.resilience.Clock`, so the tests drive it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from monitor.config import MAX_LEASE_TTL, MonitorConfig
from monitor.store import LeaderLease, LeaseLost, StoreError, StoreUnavailable
from shared.resilience import SYSTEM_CLOCK, Clock, within

if TYPE_CHECKING:
    from monitor.store.writing.base import Fence

logger = logging.getLogger("monitor.leadership")

MONITOR_ID_ENV = "QUESTCITY_MONITOR_ID"
MAX_MONITOR_ID = 64
"""Characters of a monitor id kept: it is stored in the lease and shown in the TUI's header."""
TTL_SHARE = 0.6
"""The derived ttl as a share of the shortest interval (of targets and checks alike). The longest
gap in the history across a takeover is the leader's last interval, then ttl and a poll
(1.25 ttl) before the standby's first check, then its start-up: 0.6 keeps that at 1.75 intervals
and a few tenths of a second, within the two intervals promised (ARCHITECTURE §11)."""
MIN_TTL = 1.0
"""Below a second a leader is deposed by the first stall of its loop or its store (a GC pause, a
slow commit): stability wins over the two-interval bound, which holds from 2 s intervals up."""
MAX_DERIVED_TTL = 60.0
DEFAULT_INTERVAL = 10.0
STEP_DOWN_GRACE = 1.0
"""Seconds a deposed leader's daemon gets to wind down, at most: its writes are refused anyway."""
STOP_GRACE = 10.0
"""Seconds a stopping leader's daemon gets to finish its checks and flush (MonitorDaemon.stop)."""

Role = Literal["starting", "standby", "leader", "stopped"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]+")


def monitor_id(environ: Mapping[str, str] | None = None) -> str:
    """This monitor's id: ``$QUESTCITY_MONITOR_ID`` (the pod name in deploy/k8s), else
    ``hostname-pid``; reduced to letters, digits and ``._:@-`` and at most 64 characters."""
    env = os.environ if environ is None else environ
    chosen = env.get(MONITOR_ID_ENV, "").strip() or f"{socket.gethostname()}-{os.getpid()}"
    cleaned = _UNSAFE.sub("-", chosen).strip("-")[:MAX_MONITOR_ID]
    return cleaned or f"monitor-{os.getpid()}"


def lease_ttl(config: MonitorConfig) -> float:
    """``[monitor] lease_ttl`` if set; else 0.6 × the shortest interval of the targets and the
    ``[[checks]]``, 1 s to 60 s."""
    if config.lease_ttl is not None:
        return config.lease_ttl
    intervals = [t.interval for t in config.targets] + [c.interval for c in config.checks]
    shortest = min(intervals, default=DEFAULT_INTERVAL)
    return _bounded_ttl(TTL_SHARE * shortest, most=MAX_DERIVED_TTL)


def _bounded_ttl(ttl: float, *, most: float) -> float:
    if not math.isfinite(ttl):
        return most
    return min(max(ttl, MIN_TTL), most)


class LeaseStore(Protocol):
    """The lease operations of :class:`monitor.store.leases.LeaseStore`."""

    async def read(self) -> LeaderLease | None: ...

    async def acquire(
        self, holder: str, *, ttl: float, now: float, expected: LeaderLease | None
    ) -> LeaderLease | None: ...

    async def renew(self, lease: LeaderLease, *, now: float) -> LeaderLease | None: ...

    async def release(self, lease: LeaderLease, *, now: float) -> None: ...

    def fence(self, lease: LeaderLease) -> Fence: ...


class LeaderDaemon(Protocol):
    """What a leader runs: :class:`monitor.daemon.MonitorDaemon`."""

    async def start(self) -> None: ...

    async def stop(self, grace: float = STOP_GRACE) -> None: ...


DaemonFactory = Callable[["Fence", Callable[[], None]], LeaderDaemon]
"""Builds a leader's daemon from its lease's fence and the callback for a write that found the
lease lost (``MonitorDaemon(config, fence=..., on_lease_lost=...)``)."""


class Leadership:
    """The role loop of one monitor; :meth:`run` until a stop is asked for."""

    def __init__(
        self,
        leases: LeaseStore,
        daemon: DaemonFactory,
        *,
        monitor: str,
        ttl: float,
        clock: Clock = SYSTEM_CLOCK,
        sole: bool = False,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.leases = leases
        self._daemon = daemon
        self.monitor = monitor
        self.ttl = ttl
        self.clock = clock
        self.sole = sole
        """No other monitor can be running on this store (SQLite, under its file lock): take
        the lease at once, whoever holds it (a monitor killed before releasing it)."""
        self.stop_grace = stop_grace
        self.role: Role = "starting"
        self.lease: LeaderLease | None = None
        """The lease while this monitor leads (as last renewed)."""
        self.terms = 0
        """Times this monitor has taken the lease."""
        self._store_down = False

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by and lead in turn until ``stop`` is set; a leader then stops its daemon and
        releases the lease. A store error that no retry mends (a store of a newer program)
        ends the loop by raising it."""
        try:
            while not stop.is_set():
                taken = await self._stand_by(stop)
                if taken is None:
                    break
                lease, taken_at = taken
                await self._lead(lease, stop, taken_at=taken_at)
        finally:
            self.role = "stopped"

    # -- standing by ----------------------------------------------------------------------------

    async def _stand_by(self, stop: asyncio.Event) -> tuple[LeaderLease, float] | None:
        """Watch the lease until this monitor takes it (returned, with when the takeover
        returned) or ``stop`` is set (None)."""
        seen: tuple[str, int, int] | None = None
        since = self.clock.monotonic()
        announced = False
        while not stop.is_set():
            wait = self.ttl / 4
            try:
                current = await self.leases.read()
            except StoreError as error:
                self._store_failed("read the leadership lease", error)
                if not announced:
                    self._announce("standby", None, note="the lease cannot be read yet")
                    announced = True
            else:
                self._store_answered()
                now = self.clock.monotonic()
                state = None if current is None else (current.holder, current.epoch, current.beat)
                if state != seen:
                    seen, since = state, now
                if not announced:
                    self._announce("standby", current)
                    announced = True
                if self._may_take_over(current, now - since):
                    taken = await self._take_over(current)
                    if taken is not None:
                        # The first renewal is due a ttl after the takeover RETURNED, not after
                        # it was sent: on PostgreSQL it may have waited seconds for the old
                        # leader's writes in flight, and no monitor could see the new epoch
                        # before it committed, a moment ago.
                        return taken, self.clock.monotonic()
                    # Another monitor won the swap (or the store failed): watch the lease anew.
                    seen, since = None, now
                elif current is not None and current.holder:
                    # Wake when the lease would have gone unrenewed for its ttl, not a poll later.
                    wait = min(wait, max(since + self._their_ttl(current) - now, 0.0))
            if await self._wait(wait, stop):
                break
        return None

    def _may_take_over(self, current: LeaderLease | None, unchanged_for: float) -> bool:
        if current is None or not current.holder or self.sole:
            return True
        return unchanged_for >= self._their_ttl(current)

    def _their_ttl(self, lease: LeaderLease) -> float:
        """The ttl the holder promised to renew within, as its row says (a standby configured
        with a shorter one must not take the lease from a leader renewing as promised)."""
        if not (math.isfinite(lease.ttl) and lease.ttl > 0):
            return self.ttl
        return min(max(lease.ttl, MIN_TTL), MAX_LEASE_TTL)

    async def _take_over(self, current: LeaderLease | None) -> LeaderLease | None:
        try:
            return await self.leases.acquire(
                self.monitor, ttl=self.ttl, now=self.clock.wall(), expected=current
            )
        except StoreError as error:
            self._store_failed("take the leadership lease", error)
            return None

    # -- leading -------------------------------------------------------------------------------

    async def _lead(self, lease: LeaderLease, stop: asyncio.Event, *, taken_at: float) -> None:
        """Lead under ``lease`` (taken at ``taken_at``) until ``stop`` is set (stop the daemon,
        then release) or the lease is lost (stop the daemon at once)."""
        self.lease = lease
        self.terms += 1
        self._announce("leader", lease)
        lost = asyncio.Event()
        renewing = asyncio.ensure_future(self._keep_renewing(lost, renewed_at=taken_at))
        failed: StoreError | None = None
        try:
            daemon: LeaderDaemon | None = None
            try:
                daemon = self._daemon(self.leases.fence(lease), lost.set)
                await daemon.start()
            except LeaseLost:
                lost.set()
            except StoreError as error:
                failed = error
                logger.error(
                    "monitor %s could not start leading: %s",
                    self.monitor,
                    error,
                    extra={"event": "monitor_start_failed", "monitor": self.monitor},
                )
            if failed is None:
                await _first_of(stop, lost)
            if lost.is_set():
                logger.warning(
                    "monitor %s lost the leadership lease (epoch %d); standing by",
                    self.monitor,
                    lease.epoch,
                    extra={"event": "lease_lost", "monitor": self.monitor, "epoch": lease.epoch},
                )
                if daemon is not None:
                    await self._stop_daemon(daemon, min(STEP_DOWN_GRACE, self.ttl / 4))
            else:
                # Renewing goes on while the daemon winds down: its last writes are fenced too.
                if daemon is not None:
                    await self._stop_daemon(daemon, self.stop_grace)
                await _cancelled(renewing)
                if not lost.is_set():
                    await self._release()
        finally:
            await _cancelled(renewing)
            self.lease = None
        if failed is not None:
            if not isinstance(failed, StoreUnavailable):
                raise failed  # (a store this program must not write: nothing to retry)
            await self._wait(self.ttl / 4, stop)  # let another monitor try first

    async def _keep_renewing(self, lost: asyncio.Event, *, renewed_at: float) -> None:
        """Renew every ttl/3; set ``lost`` when the lease is taken or no renewal has succeeded
        for ttl since ``renewed_at`` (each renewal is cut off at that deadline: a store that
        hangs is one that cannot be reached). A renewal's time is when it was sent, not answered:
        a standby saw the beat after that, so this monitor stops leading before it may take over.
        The first deadline counts from ``renewed_at``, when the takeover returned: a takeover
        that waited for the old leader's writes must not cost the new leader its first renewal
        (a standby sees the new epoch only once it committed; the fence covers the moment's
        difference)."""
        while True:
            await self.clock.sleep(self.ttl / 3)
            lease = self.lease
            if lease is None:
                return
            sent = self.clock.monotonic()
            left = renewed_at + self.ttl - sent
            try:
                renewed = await within(
                    self.leases.renew(lease, now=self.clock.wall()), max(left, 0.0), self.clock
                )
            except TimeoutError:
                self._no_renewal(lease)
                lost.set()
                return
            except LeaseLost:
                renewed = None
            except StoreError as error:
                self._store_failed("renew the leadership lease", error)
                if self.clock.monotonic() - renewed_at >= self.ttl:
                    self._no_renewal(lease)
                    lost.set()
                    return
                continue
            if renewed is None:
                lost.set()
                return
            self._store_answered()
            self.lease = renewed
            renewed_at = sent  # (when it was sent: the standbys saw the beat after that)

    def _no_renewal(self, lease: LeaderLease) -> None:
        logger.error(
            "monitor %s could not renew its lease for %g s; standing down",
            self.monitor,
            self.ttl,
            extra={"event": "lease_expired", "monitor": self.monitor, "epoch": lease.epoch},
        )

    async def _stop_daemon(self, daemon: LeaderDaemon, grace: float) -> None:
        try:
            await daemon.stop(grace)
        except Exception as error:  # its own failures are its to log; the lease is ours
            logger.error(
                "the daemon did not stop cleanly: %s",
                type(error).__name__,
                extra={"event": "daemon_stop_failed", "monitor": self.monitor},
            )

    async def _release(self) -> None:
        lease = self.lease
        if lease is None:
            return
        try:
            await within(self.leases.release(lease, now=self.clock.wall()), self.ttl, self.clock)
        except (StoreError, TimeoutError) as error:
            # A standby takes over after ttl anyway; only the quick hand-over is missed.
            logger.warning(
                "monitor %s could not release its lease: %s",
                self.monitor,
                str(error) or type(error).__name__,
                extra={"event": "lease_release_failed", "monitor": self.monitor},
            )
            return
        logger.info(
            "monitor %s released the leadership lease (epoch %d)",
            self.monitor,
            lease.epoch,
            extra={"event": "lease_released", "monitor": self.monitor, "epoch": lease.epoch},
        )

    # -- waiting and telling ---------------------------------------------------------------------

    async def _wait(self, seconds: float, stop: asyncio.Event) -> bool:
        """Wait ``seconds`` on the clock or until ``stop`` is set; whether it is."""
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await _first_of(stop, timer)
        finally:
            timer.cancel()
        return stop.is_set()

    def _announce(self, role: Role, lease: LeaderLease | None, *, note: str = "") -> None:
        self.role = role
        epoch = lease.epoch if lease is not None else None
        if role == "leader":
            message = f"leader: monitor {self.monitor} leads (epoch {epoch})"
        elif note:
            message = f"standby: monitor {self.monitor} stands by; {note}"
        elif lease is not None and lease.holder:
            message = (
                f"standby: monitor {self.monitor} stands by; {lease.holder} leads (epoch {epoch})"
            )
        else:
            message = f"standby: monitor {self.monitor} stands by; no monitor leads"
        logger.info(
            message,
            extra={"event": "monitor_role", "role": role, "monitor": self.monitor, "epoch": epoch},
        )

    def _store_failed(self, what: str, error: StoreError) -> None:
        if self._store_down:
            return  # once per outage: a standby polls four times a ttl
        self._store_down = True
        logger.warning(
            "monitor %s could not %s: %s",
            self.monitor,
            what,
            error,
            extra={"event": "lease_store_error", "monitor": self.monitor},
        )

    def _store_answered(self) -> None:
        if self._store_down:
            self._store_down = False
            logger.info(
                "monitor %s reaches the store again",
                self.monitor,
                extra={"event": "lease_store_back", "monitor": self.monitor},
            )


async def _cancelled(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _first_of(*waitables: asyncio.Event | asyncio.Future[Any]) -> None:
    """Until one of the events is set or one of the futures is done."""
    waiters = [
        asyncio.ensure_future(w.wait()) if isinstance(w, asyncio.Event) else w for w in waitables
    ]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waitable, waiter in zip(waitables, waiters, strict=True):
            if isinstance(waitable, asyncio.Event):
                waiter.cancel()
