"""The browser TUI's users file (issue #14: people, not a shared token): scrypt hashes with a
salt per user, a file with clear errors (line and what is wrong), bounded, re-read when it
changes, and ``questcity tui user add|remove|list`` to write it without an editor."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config
from monitor.tui import cli, users
from monitor.tui.identity import Role
from monitor.tui.users import (
    MAX_FILE_BYTES,
    Account,
    PasswordError,
    UsersFile,
    UsersFileError,
    hash_password,
    load_users,
    parse_users,
    set_user,
    verify_password,
)

DEFAULT_COST = (users.SCRYPT_N, users.SCRYPT_R, users.SCRYPT_P)  # before the fixture lowers it
CHEAP = {"n": 16, "r": 1, "p": 1}
"""scrypt at the lowest cost, so tests do not spend a second per hash; the format is the same."""


def cheap_hash(password: str) -> str:
    return hash_password(password, **CHEAP)


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "SCRYPT_N", 16)
    monkeypatch.setattr(users, "SCRYPT_R", 1)
    monkeypatch.setattr(users, "SCRYPT_P", 1)
    monkeypatch.setattr(users.hash_password, "__kwdefaults__", CHEAP)


# -- hashing ---------------------------------------------------------------------------------------


def test_a_password_is_kept_as_a_salted_scrypt_key_and_verified() -> None:
    first = hash_password("correct horse")
    second = hash_password("correct horse")
    assert first.startswith("scrypt$16$1$1$")
    assert "correct horse" not in first
    assert first != second  # a salt of its own per user: equal passwords do not show
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)
    assert not verify_password("correct horsf", first)


def test_the_default_cost_is_owasps_scrypt() -> None:
    assert DEFAULT_COST == (2**14, 8, 5)  # OWASP's scrypt row: N=2^14, r=8, p=5 (16 MiB)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "md5$abc",
        "scrypt$16$1$1$c2FsdHNhbHQ$",  # no key
        "scrypt$15$1$1$c2FsdHNhbHQ$" + "A" * 43,  # N not a power of 2
        "scrypt$1048576$64$1$c2FsdHNhbHQ$" + "A" * 43,  # asks for 8 GiB
        "scrypt$16$1$1$!!!$" + "A" * 43,
    ],
)
def test_a_malformed_hash_matches_nothing_and_never_raises(encoded: str) -> None:
    assert not verify_password("anything", encoded)


@pytest.mark.parametrize("password", ["short", "x" * 1025, "two\nlines"])
def test_passwords_that_cannot_be_set(password: str) -> None:
    with pytest.raises(PasswordError):
        hash_password(password)


# -- the file --------------------------------------------------------------------------------------


def test_a_file_of_users_with_roles_and_hashes(tmp_path: Path) -> None:
    text = (
        f'[users.alice]\nrole = "operator"\npassword = "{cheap_hash("alice password")}"\n\n'
        '[users."bob@example.org"]\nrole = "admin"\n'
    )
    accounts = parse_users(text, tmp_path / "u.toml")
    assert accounts["alice"].role is Role.OPERATOR
    assert accounts["alice"].password_hash is not None
    assert verify_password("alice password", accounts["alice"].password_hash)
    assert accounts["bob@example.org"] == Account("bob@example.org", Role.ADMIN, None)
    assert "scrypt" not in repr(accounts["alice"])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[users.alice]\nrole = "root"\n', "u.toml:1: users.alice.role: must be one of viewer"),
        ('[users.a]\nrole = "viewer"\n\n[users.alice]\nrole = "superuser"\n', "u.toml:4: "),
        (
            '[users.alice]\nrole = "viewer"\npassword = "hunter2"\n',
            "u.toml:1: users.alice.password",
        ),
        ('[users.alice]\nrole = "viewer"\ncolour = "red"\n', "unknown key 'colour'"),
        ('[users."al ice"]\nrole = "viewer"\n', "u.toml:1: user name 'al ice'"),
        ('[users."al:ice"]\nrole = "viewer"\n', "user name 'al:ice'"),
        ('[users.alice]\nrole = "viewer"\n[users.alice]\n', "u.toml:3: not valid TOML"),
        ('[people.alice]\nrole = "viewer"\n', "unknown section 'people'"),
        ('users = ["alice"]\n', "users must be tables"),
        ("[users]\nalice = 3\n", "users.alice: must be a table"),
    ],
)
def test_a_bad_file_names_the_line_and_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(UsersFileError) as refused:
        parse_users(text, tmp_path / "u.toml")
    assert error in str(refused.value)


def test_the_file_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    path.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(UsersFileError, match="larger than 256 KiB"):
        load_users(path)
    many = "".join(f'[users.u{n}]\nrole = "viewer"\n' for n in range(users.MAX_USERS + 1))
    with pytest.raises(UsersFileError, match="at most 1000"):
        parse_users(many, path)
    path.write_bytes(b'[users.alice]\nrole = "\xff"\n')
    with pytest.raises(UsersFileError, match="not UTF-8"):
        load_users(path)
    with pytest.raises(UsersFileError, match="no such file; create it with `questcity tui user"):
        load_users(tmp_path / "missing.toml")


def test_set_user_adds_changes_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "tui-users.toml"
    assert set_user(path, "alice", Role.OPERATOR, "first password") is True
    assert set_user(path, "bob", Role.VIEWER, "bob's password") is True
    before = load_users(path)["bob"]
    assert set_user(path, "alice", Role.ADMIN, "second password") is False
    accounts = load_users(path)
    assert accounts["alice"].role is Role.ADMIN
    hashed = accounts["alice"].password_hash
    assert hashed is not None
    assert verify_password("second password", hashed)
    assert not verify_password("first password", hashed)
    assert accounts["bob"] == before
    assert path.stat().st_mode & 0o777 == 0o600  # hashes are for nobody else to try offline
    assert users.remove_user(path, "bob")
    assert not users.remove_user(path, "bob")
    assert list(load_users(path)) == ["alice"]


# -- re-reading ------------------------------------------------------------------------------------


def touch_later(path: Path) -> None:
    """Make a change visible to a stat even within the filesystem's timestamp granularity."""
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def error_of(watched: UsersFile) -> str | None:
    return watched.error  # read afresh: mypy keeps a narrowed attribute across refresh()


def test_the_file_is_re_read_when_it_changes_and_a_broken_one_signs_everyone_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "u.toml"
    set_user(path, "alice", Role.OPERATOR, "alice password")
    set_user(path, "bob", Role.VIEWER, "bob's password")
    watched = UsersFile(path)
    assert set(watched.accounts) == {"alice", "bob"}
    assert watched.refresh() is False  # unchanged: not re-read

    users.remove_user(path, "bob")
    assert watched.refresh() is True
    assert set(watched.accounts) == {"alice"}

    path.write_text(path.read_text() + "[users.carol]\nrole = 'boss'\n")
    touch_later(path)
    assert watched.refresh() is True
    assert watched.accounts == {}  # fail closed: nobody signs in on a file that does not parse
    assert watched.error is not None and "users.carol.role" in watched.error
    assert "users.carol.role: must be one of" in caplog.text

    path.write_text(path.read_text().replace("'boss'", "'viewer'"))
    touch_later(path)
    assert watched.refresh() is True
    assert error_of(watched) is None
    assert set(watched.accounts) == {"alice", "carol"}
    assert watched.accounts["carol"].password_hash is None


def test_a_bad_file_at_start_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    path.write_text('[users.alice]\nrole = "root"\n')
    with pytest.raises(UsersFileError, match=r"u\.toml:1"):
        UsersFile(path)


# -- [tui] in monitor.toml -------------------------------------------------------------------------

BASE = '[[targets]]\nname = "api"\nurl = "http://127.0.0.1:8000"\n\n'


def test_the_tui_section(tmp_path: Path) -> None:
    config = parse_config(
        BASE + '[tui]\nusers_file = "tui-users.toml"\ntrusted_header = "X-Forwarded-User"\n'
        'default_role = "operator"\ntrusted_proxies = ["10.0.0.0/8"]\n',
        tmp_path / "monitor.toml",
    )
    assert config.tui.users_file == tmp_path / "tui-users.toml"  # beside monitor.toml
    assert config.tui.trusted_header == "X-Forwarded-User"
    assert config.tui.default_role == "operator"
    assert config.tui.trusted_proxies == ("10.0.0.0/8",)
    plain = parse_config(BASE, tmp_path / "monitor.toml").tui
    assert (plain.users_file, plain.trusted_header, plain.default_role) == (None, None, "viewer")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('default_role = "root"', "monitor.toml:6: tui.default_role: must be one of viewer"),
        ('trusted_header = "X Forwarded"', "tui.trusted_header: must be an HTTP header name"),
        ('trusted_header = "Authorization"', "tui.trusted_header: must be the proxy's"),
        ("trusted_proxies = [17]", "tui.trusted_proxies: each must be an IP address"),
        ('users = "x"', "tui.users: unknown key"),
    ],
)
def test_a_bad_tui_section(tmp_path: Path, line: str, error: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(BASE + f"[tui]\n{line}\n", tmp_path / "monitor.toml")
    assert error in str(refused.value)


# -- questcity tui user ----------------------------------------------------------------------------


def test_user_add_reads_the_password_from_stdin_and_never_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tui-users.toml"
    config = tmp_path / "monitor.toml"
    config.write_text(BASE + '[tui]\nusers_file = "tui-users.toml"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert cli.main(["user", "add", "alice", "--role", "operator", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert out.out == f"added alice (operator) in {path}\n"
    assert "correct horse" not in out.out + out.err + path.read_text()
    hashed = load_users(path)["alice"].password_hash
    assert hashed is not None and verify_password("correct horse battery", hashed)

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = cli.main(["user", "add", "bob", "--role", "admin", "--users-file", str(path)])
    assert code == 2
    assert "no password given" in capsys.readouterr().err
    code = cli.main(
        ["user", "add", "bob", "--role", "admin", "--no-password", "--users-file", str(path)]
    )
    assert code == 0
    assert cli.main(["user", "list", "--users-file", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "alice\toperator\tpassword",
        "bob\tadmin\tproxy header only",
    ]
    assert cli.main(["user", "remove", "carol", "--users-file", str(path)]) == 2
    assert "no user 'carol'" in capsys.readouterr().err


def test_user_add_refuses_a_short_password_and_a_bad_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tui-users.toml"
    monkeypatch.setattr("sys.stdin", io.StringIO("hunter2\n"))
    assert cli.main(["user", "add", "alice", "--role", "viewer", "--users-file", str(path)]) == 2
    assert "a password must be 8 to 1024 characters, got 7" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough\n"))
    assert cli.main(["user", "add", "al ice", "--role", "viewer", "--users-file", str(path)]) == 2
    assert "user name 'al ice'" in capsys.readouterr().err
    assert not path.exists()


def test_user_commands_need_a_users_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(BASE)
    assert cli.main(["user", "list", "--config", str(config)]) == 2
    assert "has no [tui] users_file; add one or pass --users-file" in capsys.readouterr().err
