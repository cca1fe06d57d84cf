"""The connection policy without sockets: who is evicted, who is refused, what the cap fits in."""

from __future__ import annotations

import logging
import resource

import pytest

from connection_guard import ConnectionLimits, ConnectionRegistry, LimitsError
from connection_guard.limits import REQUEST_TIMEOUT, raise_open_files_limit, refusal


def registry(cap: int) -> tuple[ConnectionRegistry[str], list[str]]:
    evicted: list[str] = []
    return ConnectionRegistry(cap, evicted.append, clock=lambda: 0.0), evicted


def test_below_the_cap_every_connection_is_admitted() -> None:
    held, evicted = registry(3)
    assert all(held.admit(name) for name in "abc")
    assert len(held) == 3 and held.waiting_count == 3 and evicted == []


def test_at_the_cap_the_longest_waiting_connection_makes_room() -> None:
    held, evicted = registry(3)
    for name in "abc":
        held.admit(name)
    held.busy("a")  # a request is in progress on it: never evicted
    assert held.admit("d")
    assert evicted == ["b"]
    assert held.admit("e")
    assert evicted == ["b", "c"]
    assert len(held) == 3 and held.evicted == 2


def test_a_connection_waiting_again_goes_to_the_back_of_the_line() -> None:
    held, evicted = registry(2)
    held.admit("a")
    held.admit("b")
    held.busy("a")
    held.waiting("a")  # its response went out: it waits for the next request from now
    held.admit("c")
    assert evicted == ["b"]


def test_when_every_held_connection_is_busy_a_new_one_is_refused() -> None:
    held, evicted = registry(2)
    for name in "ab":
        held.admit(name)
        held.busy(name)
    assert not held.admit("c")
    assert held.refused == 1 and evicted == [] and len(held) == 2
    held.release("a")  # a slot comes back when a connection closes
    assert held.admit("c")


def test_a_full_server_is_reported_once_a_minute_not_per_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    held: ConnectionRegistry[int] = ConnectionRegistry(1, lambda c: None, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="connection_guard"):
        for n in range(1000):
            held.admit(n)
        now[0] = 61.0
        held.admit(1000)
    assert len(caplog.records) == 2
    assert "1000 waiting ones evicted" in caplog.records[1].getMessage()


def test_the_cap_leaves_room_for_the_process_own_files() -> None:
    limits = ConnectionLimits(max_connections=10_000)
    assert limits.within_open_files(1024).max_connections == 768
    assert limits.within_open_files(400).max_connections == 300
    assert limits.within_open_files(1 << 20) is limits


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("header_timeout", 0.0, "header timeout 0.0: must be a number of seconds above 0"),
        ("header_timeout", float("inf"), "header timeout inf: must be a number of seconds"),
        ("keepalive_timeout", 0, "keep-alive timeout 0: must be 1 or more"),
        ("max_connections", 0, "connection cap 0: must be 1 or more"),
    ],
)
def test_limits_no_server_can_use_are_refused(field: str, value: float, problem: str) -> None:
    with pytest.raises(LimitsError, match=problem):
        ConnectionLimits(**{field: value})  # type: ignore[arg-type]


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        raised = raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert raised == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_canned_answers_are_well_formed_http() -> None:
    for answer in (refusal(42), REQUEST_TIMEOUT):
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.startswith(b"Content") and b"Length" in line
        )
        assert length == len(body)
    assert b"at most 42" in refusal(42)


def test_the_backend_reads_its_bounds_from_the_environment() -> None:
    from backend.server import connection_limits
    from backend.settings import Settings, SettingsError

    settings = Settings.from_mapping(
        {
            "QUESTCITY_HEADER_TIMEOUT": "2.5",
            "QUESTCITY_KEEPALIVE_TIMEOUT": "7",
            "QUESTCITY_MAX_CONNECTIONS": "300",
        }
    )
    assert connection_limits(settings) == ConnectionLimits(2.5, 7, 300)
    with pytest.raises(SettingsError, match="QUESTCITY_MAX_CONNECTIONS='0': must be 1 or more"):
        Settings.from_mapping({"QUESTCITY_MAX_CONNECTIONS": "0"})
    with pytest.raises(SettingsError, match="QUESTCITY_HEADER_TIMEOUT='-1'"):
        Settings.from_mapping({"QUESTCITY_HEADER_TIMEOUT": "-1"})
    with pytest.raises(SettingsError, match="QUESTCITY_HEADER_TIMEOUT=inf: give a number"):
        Settings.from_mapping({"QUESTCITY_HEADER_TIMEOUT": "inf"})
