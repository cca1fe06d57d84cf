"""Rendered outputs, kept until new data arrives.

A :class:`Generation` is one state of the store (its change token) seen in one hour: the board read
once, the history read on first need, and every output rendered from them on first request, with
its ETag. :class:`PageCache` asks the store for its change token at most once per
``revalidate_after`` seconds (so a burst of requests costs no reads at all), and then starts a new
generation if the token moved, the hour turned (bars and the 24 h line shift), the data turned
stale or a maintenance window began or ended (nothing is written then: the clock alone turns
it). One request at a time refreshes; the rest wait for it or use the current generation.

If the store cannot be read, the last generation keeps being served (and the failure logged);
without one, :class:`PageUnavailable` is raised (the app answers 503). "Cannot be read" is any
:class:`monitor.store.errors.StoreError`: the store's adapter translates its database's errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from monitor.store.errors import StoreError
from statuspage.model import Board, ComponentHistory, IncidentView
from statuspage.responses import Output
from statuspage.source import StoreSource

logger = logging.getLogger("statuspage")

Clock = Callable[[], float]
_INCIDENT_MEMO = 256


class PageUnavailable(Exception):
    """The store cannot be read and nothing has been read from it before."""


def _hour(now: float) -> int:
    return int(now // 3600)


class Generation:
    def __init__(self, token: float, board: Board, source: StoreSource) -> None:
        self.token = token
        self.board = board
        self.hour = _hour(board.now)
        self.turns_at = board.turns_at
        self._source = source
        self._history: Mapping[str, ComponentHistory] | None = None
        self._history_lock = asyncio.Lock()
        self._incidents: dict[int, IncidentView | None] = {}
        self.outputs: dict[str, Output] = {}

    def fits(self, now: float) -> bool:
        board = self.board
        stale = board.data_at is not None and now - board.data_at > board.stale_after
        turned = self.turns_at is not None and now >= self.turns_at  # a window began or ended
        return _hour(now) == self.hour and stale == board.stale and not turned

    async def history(self) -> Mapping[str, ComponentHistory]:
        if self._history is None:
            async with self._history_lock:
                if self._history is None:
                    try:
                        self._history = await self._source.history(self.board)
                    except StoreError as error:
                        raise PageUnavailable(str(error)) from error
        return self._history

    async def incident(self, incident_id: int) -> IncidentView | None:
        if incident_id in self._incidents:
            return self._incidents[incident_id]
        try:
            incident = await self._source.incident(incident_id, self.board)
        except StoreError as error:
            raise PageUnavailable(str(error)) from error
        if len(self._incidents) < _INCIDENT_MEMO:
            self._incidents[incident_id] = incident
        return incident

    async def output(self, name: str, make: Callable[[Generation], Awaitable[Output]]) -> Output:
        """The output called ``name``, made on first need. Only 200s are kept: a 404 for any
        name a client makes up must not grow the cache."""
        found = self.outputs.get(name)
        if found is None:
            found = await make(self)
            if found.status_code == 200:
                self.outputs[name] = found
        return found


class PageCache:
    def __init__(
        self,
        source: StoreSource,
        *,
        clock: Clock,
        monotonic: Clock,
        revalidate_after: float,
    ) -> None:
        self._source = source
        self._clock = clock
        self._monotonic = monotonic
        self._revalidate_after = revalidate_after
        self._generation: Generation | None = None
        self._next_check = float("-inf")
        self._lock = asyncio.Lock()

    def clear(self) -> None:
        """Forget everything (the next request reads the store again)."""
        self._generation = None
        self._next_check = float("-inf")

    async def current(self) -> Generation:
        generation = self._generation
        if generation is not None and self._monotonic() < self._next_check:
            return generation
        async with self._lock:
            generation = self._generation
            if generation is not None and self._monotonic() < self._next_check:
                return generation  # refreshed by the request we waited for
            return await self._refresh(generation)

    async def _refresh(self, generation: Generation | None) -> Generation:
        now = self._clock()
        try:
            token = await self._source.change_token()
            if generation is None or generation.token != token or not generation.fits(now):
                generation = Generation(token, await self._source.board(now), self._source)
        except StoreError as error:
            if generation is None:
                raise PageUnavailable(str(error)) from error
            logger.warning(
                "cannot read the monitor's store; serving what was read before: %r",
                error,
                extra={"event": "store_unavailable"},
            )
        self._next_check = self._monotonic() + self._revalidate_after
        self._generation = generation
        return generation
