"""The last-good cache: bounded, least recently used out first, and aged by the injected clock."""

from __future__ import annotations

from pathlib import Path

from backend.app import create_app
from backend.degradation import LastGoodCache
from backend.settings import Settings
from backend.state import AppState
from shared.resilience.testing import FakeClock


async def test_age_is_measured_on_the_injected_clock() -> None:
    clock = FakeClock()
    cache = LastGoodCache(clock=clock)
    cache.put("quests", {"items": []})
    entry = cache.get("quests")
    assert entry is not None

    assert cache.age(entry) == 0.0  # real time passing changes nothing
    await clock.advance(42.5)
    assert cache.age(entry) == 42.5


async def test_a_wall_clock_jump_does_not_age_a_copy() -> None:
    clock = FakeClock()
    cache = LastGoodCache(clock=clock)
    cache.put("quests", "payload")
    clock.jump_wall(-3600)  # an NTP step backwards
    entry = cache.get("quests")
    assert entry is not None

    assert cache.age(entry) == 0.0


async def test_storing_again_restarts_the_age() -> None:
    clock = FakeClock()
    cache = LastGoodCache(clock=clock)
    cache.put("quest", 1)
    await clock.advance(10)
    cache.put("quest", 2)
    await clock.advance(3)
    entry = cache.get("quest")
    assert entry is not None

    assert (entry.payload, cache.age(entry)) == (2, 3.0)


def test_least_recently_used_entry_goes_first() -> None:
    cache = LastGoodCache(2, clock=FakeClock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", 3)

    assert (cache.get("a") is not None, cache.get("b"), cache.get("c") is not None) == (
        True,
        None,
        True,
    )
    assert len(cache) == 2


async def test_the_app_ages_its_copies_on_its_own_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", keys_dir=tmp_path / "keys"
    )
    state: AppState = create_app(settings, clock=clock).state.questcity
    state.cache.put(("quest", "1"), {"id": "1"})
    await clock.advance(7)
    entry = state.cache.get(("quest", "1"))
    assert entry is not None

    assert state.cache.age(entry) == 7.0
