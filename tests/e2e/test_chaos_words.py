"""The `up` side of `questcity chaos`, on a real fault proxy: it answers in the command's words,
`heal` clears whatever fault is in force, and a bad latency is refused, not applied."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from questcity.chaos import handle
from questcity.embedded.faultproxy import FaultProxy, Mode


@pytest.fixture
def s3_proxy() -> Iterator[FaultProxy]:
    with socket.socket() as upstream:  # something to point at; nothing needs to get through
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        with FaultProxy(upstream.getsockname(), name="s3") as proxy:
            yield proxy


def test_status_names_each_service_in_the_commands_words(s3_proxy: FaultProxy) -> None:
    proxies = {"s3": s3_proxy}
    assert handle(proxies, {"action": "status"}) == {
        "ok": True,
        "services": {
            "database": "no fault proxy here",
            "s3": "no fault (connections pass)",
            "backend": "no fault proxy here",
        },
    }
    handle(proxies, {"service": "s3", "action": "down"})
    assert handle(proxies, {"action": "status"})["services"] == {
        "database": "no fault proxy here",
        "s3": "down (new connections refused)",
        "backend": "no fault proxy here",
    }


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("down", "down (new connections refused)"),
        ("slow", "slow (+0.5 s per chunk, each way)"),
        ("blackhole", "blackhole (connections accepted, never answered)"),
        ("reset-connections", "reset-connections (every connection reset)"),
        ("reset", "reset-connections (every connection reset)"),  # a fault, not a heal
    ],
)
def test_heal_clears_each_fault(s3_proxy: FaultProxy, fault: str, words: str) -> None:
    proxies = {"s3": s3_proxy}
    assert handle(proxies, {"service": "s3", "action": fault, "latency": 0.5}) == {
        "ok": True,
        "mode": words,
    }
    assert s3_proxy.mode is not Mode.PASS
    healed = handle(proxies, {"service": "s3", "action": "heal"})
    assert healed == {"ok": True, "mode": "no fault (connections pass)"}
    assert (s3_proxy.mode, s3_proxy.latency) == (Mode.PASS, 0.0)


@pytest.mark.parametrize("latency", [0, -1, float("nan"), float("inf"), 1e9])
def test_a_latency_out_of_range_is_refused(s3_proxy: FaultProxy, latency: float) -> None:
    answer = handle({"s3": s3_proxy}, {"service": "s3", "action": "slow", "latency": latency})
    assert answer == {
        "ok": False,
        "error": "--latency must be more than 0 and at most 60 seconds",
    }
    assert s3_proxy.mode is Mode.PASS


def test_unknown_words_are_named(s3_proxy: FaultProxy) -> None:
    proxies = {"s3": s3_proxy}
    assert handle(proxies, {"service": "database", "action": "down"}) == {
        "ok": False,
        "error": "database has no fault proxy in this stack",
    }
    assert handle(proxies, {"service": "cache", "action": "down"}) == {
        "ok": False,
        "error": "unknown service 'cache'",
    }
    assert handle(proxies, {"service": "s3", "action": "explode"}) == {
        "ok": False,
        "error": "unknown action 'explode'; one of: down, slow, blackhole, reset-connections, heal",
    }
