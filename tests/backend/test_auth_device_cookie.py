"""Device cookies (``backend.auth.device_cookie``): signed, bound to one account, expiring."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backend.auth.device_cookie import MAX_AGE, DeviceCookies

NOW = 1_700_000_000.0
COOKIES = DeviceCookies(b"k" * 32)


def test_a_cookie_names_its_device_for_its_account_only() -> None:
    value = COOKIES.issue("alice", NOW)
    device = COOKIES.device_for(value, "alice", NOW + 60)
    assert device is not None and device in value
    assert COOKIES.device_for(value, "bob", NOW + 60) is None


def test_each_login_gets_a_new_device_id() -> None:
    assert COOKIES.issue("alice", NOW) != COOKIES.issue("alice", NOW)


def test_a_cookie_expires() -> None:
    value = COOKIES.issue("alice", NOW)
    assert COOKIES.device_for(value, "alice", NOW + MAX_AGE) is not None
    assert COOKIES.device_for(value, "alice", NOW + MAX_AGE + 1) is None
    assert COOKIES.device_for(value, "alice", NOW - 1) is None  # issued in the future


def test_another_secret_does_not_accept_it() -> None:
    value = COOKIES.issue("alice", NOW)
    assert DeviceCookies(b"j" * 32).device_for(value, "alice", NOW) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v.replace("v1.", "v2.", 1),
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),
        lambda v: ".".join(v.split(".")[:3]),
        lambda v: v + "." + "x",
        lambda v: "v1.-5." + ".".join(v.split(".")[2:]),
        lambda v: v * 10,
        lambda v: "",
    ],
)
def test_a_tampered_cookie_is_ignored(tamper: Callable[[str], str]) -> None:
    value = COOKIES.issue("alice", NOW)
    assert COOKIES.device_for(tamper(value), "alice", NOW) is None


def test_no_cookie_is_no_device() -> None:
    assert COOKIES.device_for(None, "alice", NOW) is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda v: v[: v.rindex(".") + 1] + "abc\xe9",  # non-ASCII signature (TypeError before)
        lambda v: v.replace(".", ".\xe9", 1),
        lambda v: "v1.\u0661\u0662.abc.def",  # Arabic-Indic digits are isdecimal()
        lambda v: "v1...",
        lambda v: "....",
        lambda v: "v1." + v.split(".")[1] + "..",
        lambda v: "v1." + v.split(".")[1] + "." + "a" * 10_000 + ".x",
        lambda v: "v0." + ".".join(v.split(".")[1:]),
        lambda v: v.replace("v1", "V1", 1),
        lambda v: "\x00" * 50,
        lambda v: "\udcff",
    ],
)
def test_a_malformed_cookie_is_ignored_never_an_error(forge: Callable[[str], str]) -> None:
    value = COOKIES.issue("alice", NOW)
    assert COOKIES.device_for(forge(value), "alice", NOW) is None
