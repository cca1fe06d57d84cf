"""Admission in front of the connection pool, so that exhaustion sheds load instead of hanging.

SQLAlchemy's pool makes every caller beyond its capacity wait up to ``pool_timeout`` (30 s in the
seed): under a burst, hundreds of requests hang for 30 s each and then fail together. The gate lets
``capacity`` units of work in (the pool's size plus overflow), queues at most ``max_waiting`` more
for at most ``wait_timeout`` each, and refuses the rest at once with :class:`PoolExhausted`
(→ 503 with ``Retry-After``). Because nothing ever waits inside the pool, its own timeout never
fires. Inside a request the wait is cut to what is left of the request's budget
(:func:`shared.resilience.remaining`): a request that cannot get a connection in time is refused
like one that finds the queue full.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from types import TracebackType

from backend.db.errors import PoolExhausted
from shared.resilience import SYSTEM_CLOCK, Clock, remaining


class PoolGate:
    def __init__(
        self,
        capacity: int,
        *,
        max_waiting: int,
        wait_timeout: float,
        on_exhausted: Callable[[], None] = lambda: None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self._on_exhausted = on_exhausted
        self._clock = clock
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.exhausted = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def __aenter__(self) -> None:
        if self._in_use < self.capacity and not self._waiters:
            self._in_use += 1
            return
        if len(self._waiters) >= self.max_waiting:
            self._refuse()
        wait = self.wait_timeout
        left = remaining(self._clock)
        if left is not None and left < wait:
            if left <= 0:
                self._refuse()
            wait = left
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        # Timed on the injected clock (only those who queue pay for the timer task).
        expiry = loop.create_task(self._clock.sleep(wait), name="pool-gate-wait")
        try:
            await asyncio.wait((waiter, expiry), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._forget(waiter)
            raise
        finally:
            expiry.cancel()
        if not waiter.done():
            self._forget(waiter)
            self._refuse()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next in line
                return
        self._in_use -= 1

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self._release()  # a slot was handed over just as we gave up: pass it on
        else:
            waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _refuse(self) -> None:
        self.exhausted += 1
        self._on_exhausted()
        raise PoolExhausted()
