"""The pool gate: a wait for a connection is bounded by the gate's timeout and, inside a request,
by what is left of the request's budget. On the fake clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from backend.db.errors import PoolExhausted
from backend.db.gate import PoolGate
from shared.resilience import request_deadline
from shared.resilience.testing import FakeClock, settle


def full_gate(clock: FakeClock) -> PoolGate:
    return PoolGate(1, max_waiting=4, wait_timeout=30.0, clock=clock)


@contextlib.asynccontextmanager
async def holding(gate: PoolGate) -> AsyncIterator[None]:
    async with gate:
        yield


async def enter(gate: PoolGate) -> str:
    async with gate:
        return "admitted"


async def test_a_queued_request_waits_no_longer_than_its_budget() -> None:
    clock = FakeClock()
    gate = full_gate(clock)
    async with holding(gate):
        with request_deadline(0.5, clock=clock):
            waiting = asyncio.create_task(enter(gate))
        await clock.advance(0.4)
        assert not waiting.done()
        await clock.advance(0.2)
        assert waiting.done(), "refused at the request's deadline, not after the gate's 30 s"
        with pytest.raises(PoolExhausted):
            await waiting
        assert gate.waiting == 0
        assert gate.exhausted == 1


async def test_a_request_whose_budget_is_spent_is_refused_at_once() -> None:
    clock = FakeClock()
    gate = full_gate(clock)
    async with holding(gate):
        with request_deadline(0.5, clock=clock):
            await clock.advance(0.5)
            with pytest.raises(PoolExhausted):
                await enter(gate)
    assert gate.waiting == 0


async def test_a_slot_freed_within_the_budget_is_taken() -> None:
    clock = FakeClock()
    gate = full_gate(clock)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate:
            await release.wait()

    holder = asyncio.create_task(hold())
    await settle()
    with request_deadline(0.5, clock=clock):
        waiting = asyncio.create_task(enter(gate))
    await clock.advance(0.2)
    release.set()
    await settle()
    assert await waiting == "admitted"
    await holder
    assert gate.in_use == 0


async def test_outside_a_request_the_gate_timeout_holds() -> None:
    clock = FakeClock()
    gate = full_gate(clock)
    async with holding(gate):
        waiting = asyncio.create_task(enter(gate))
        await clock.advance(29.0)
        assert not waiting.done()
        await clock.advance(1.5)
        assert waiting.done()
        with pytest.raises(PoolExhausted):
            await waiting
