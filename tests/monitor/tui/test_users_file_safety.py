"""Who could make themselves an admin (issue #14 review): a users file others can write, or one
owned by someone else, is refused as ssh refuses such key files; ``user add``/``remove`` change
the file under a lock, so two at once both land; a trusted proxy network so wide that any client
is in it is refused while a user header is believed."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config
from monitor.tui import users
from monitor.tui.identity import Role
from monitor.tui.serve import ServeOptions, ServeRefused, check_people
from monitor.tui.users import Account, UsersFile, UsersFileError, load_users, set_user

BASE = '[[targets]]\nname = "api"\nurl = "http://127.0.0.1:8000"\n\n'


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "tui-users.toml"
    users.write_users(path, {"alice": Account("alice", Role.ADMIN)})
    return path


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666], ids=oct)
def test_a_file_others_can_write_is_refused_with_the_chmod_to_run(path: Path, mode: int) -> None:
    path.chmod(mode)
    with pytest.raises(UsersFileError) as refused:
        load_users(path)
    assert "writable by group or others" in str(refused.value)
    assert f"run `chmod 600 {path}`" in str(refused.value)
    with pytest.raises(UsersFileError):
        UsersFile(path)  # the server will not start on it either
    path.chmod(0o644)  # readable by others is fine: hashes, not passwords
    assert set(load_users(path)) == {"alice"}


def test_a_file_owned_by_another_user_is_refused(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() == 0:
        os.chown(path, 4242, 4242)
    else:  # the file is ours: seen from another (non-root) account
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(UsersFileError, match=r"owned by uid \d+, not by this user"):
        load_users(path)


def test_user_add_changes_the_file_under_an_exclusive_lock(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = path.with_name(path.name + ".lock")
    seen: list[bool] = []
    write = users.write_users

    def write_users(target: Path, accounts: Mapping[str, Account]) -> None:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append(False)  # nobody held it
        except BlockingIOError:  # EWOULDBLOCK: another holds it
            seen.append(True)
        finally:
            os.close(fd)
        write(target, accounts)

    monkeypatch.setattr(users, "write_users", write_users)
    set_user(path, "bob", Role.VIEWER, None)
    users.remove_user(path, "alice")
    assert seen == [True, True]
    assert set(load_users(path)) == {"bob"}


ADDS = 25
ADDER = """
import sys
from pathlib import Path
from monitor.tui.identity import Role
from monitor.tui.users import set_user
for number in range({adds}):
    set_user(Path(sys.argv[1]), f"{{sys.argv[2]}}{{number}}", Role.VIEWER, None)
"""


def test_two_engineers_adding_users_at_once_both_land(path: Path) -> None:
    script = ADDER.format(adds=ADDS)
    adders = [
        subprocess.Popen([sys.executable, "-c", script, str(path), prefix]) for prefix in "xy"
    ]
    assert [adder.wait(timeout=120) for adder in adders] == [0, 0]
    expected = {"alice"} | {f"{p}{n}" for p in "xy" for n in range(ADDS)}
    assert set(load_users(path)) == expected


# -- [tui] trusted_proxies with a trusted header ---------------------------------------------------


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "10.0.0.0/7", "2001:db8::/31"])
def test_a_catch_all_proxy_network_is_refused_with_a_trusted_header(
    tmp_path: Path, network: str
) -> None:
    header = '[tui]\ntrusted_header = "X-Forwarded-User"\n'
    with pytest.raises(ConfigError) as refused:
        parse_config(BASE + header + f'trusted_proxies = ["{network}"]\n', tmp_path / "m.toml")
    assert "tui.trusted_proxies: with trusted_header set" in str(refused.value)
    # without a header the proxies only say whose X-Forwarded-For to read: allowed
    plain = parse_config(BASE + f'[tui]\ntrusted_proxies = ["{network}"]\n', tmp_path / "m.toml")
    assert plain.tui.trusted_proxies == (network,)


def test_a_proxys_own_network_is_accepted_with_a_trusted_header(tmp_path: Path) -> None:
    config = parse_config(
        BASE + '[tui]\ntrusted_header = "X-Forwarded-User"\n'
        'trusted_proxies = ["10.0.0.0/8", "fd00::/32", "192.0.2.7"]\n',
        tmp_path / "m.toml",
    )
    assert config.tui.trusted_proxies == ("10.0.0.0/8", "fd00::/32", "192.0.2.7")


def test_a_catch_all_trusted_proxy_option_is_refused_with_a_trusted_header(tmp_path: Path) -> None:
    options = ServeOptions(
        tmp_path / "monitor.toml",
        trusted_header="X-Forwarded-User",
        trusted_proxies=(ipaddress.ip_network("192.0.2.1"), ipaddress.ip_network("0.0.0.0/0")),
    )
    with pytest.raises(ServeRefused, match=r"0\.0\.0\.0/0 is wider than /8"):
        check_people(options)
