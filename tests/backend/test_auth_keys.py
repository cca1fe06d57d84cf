"""The signing key pair on disk: creation, modes, reuse, tightening, broken files, races."""

from __future__ import annotations

import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.auth.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    KeyFileError,
    load_or_create_keys,
)
from tests.backend.auth_support import shared_key_pair, stranger_key_pair


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_a_key_pair_with_private_modes(tmp_path: Path) -> None:
    keys_dir = tmp_path / "var" / "keys"

    keys = load_or_create_keys(keys_dir)

    assert mode(keys_dir) == 0o700
    assert mode(keys_dir / PRIVATE_KEY_FILE) == 0o600
    assert (keys_dir / PRIVATE_KEY_FILE).read_bytes() == keys.private_pem
    assert (keys_dir / PUBLIC_KEY_FILE).read_bytes() == keys.public_pem
    assert keys.private_key.key_size == 2048
    assert keys.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert {p.name for p in keys_dir.iterdir()} == {PRIVATE_KEY_FILE, PUBLIC_KEY_FILE}


def test_private_key_is_created_with_mode_0600_not_chmodded_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    load_or_create_keys(tmp_path / "keys")
    monkeypatch.undo()

    created = [(p, f, m) for p, f, m in opened if PRIVATE_KEY_FILE in p and f & os.O_CREAT]
    assert created, "the private key was not written through os.open"
    for _, flags, file_mode in created:
        assert file_mode == 0o600
        assert flags & os.O_EXCL


def test_existing_keys_are_reused(tmp_path: Path) -> None:
    first = load_or_create_keys(tmp_path)
    second = load_or_create_keys(tmp_path)

    assert second.private_pem == first.private_pem
    assert second.public_pem == first.public_pem


def test_loose_private_key_mode_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_or_create_keys(tmp_path)
    private = tmp_path / PRIVATE_KEY_FILE
    private.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="backend.auth.keys"):
        load_or_create_keys(tmp_path)

    assert mode(private) == 0o600
    assert any(
        "tightened" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


def test_tight_private_key_mode_is_left_alone_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load_or_create_keys(tmp_path)
    (tmp_path / PRIVATE_KEY_FILE).chmod(0o400)

    with caplog.at_level(logging.WARNING, logger="backend.auth.keys"):
        load_or_create_keys(tmp_path)

    assert mode(tmp_path / PRIVATE_KEY_FILE) == 0o400
    assert caplog.records == []


@pytest.mark.parametrize(
    "content",
    [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
    ids=["empty", "garbage", "truncated-pem"],
)
def test_corrupt_private_key_raises_key_file_error_naming_file_and_fix(
    tmp_path: Path, content: bytes
) -> None:
    private = tmp_path / PRIVATE_KEY_FILE
    private.write_bytes(content)
    private.chmod(0o600)

    with pytest.raises(KeyFileError) as caught:
        load_or_create_keys(tmp_path)

    message = str(caught.value)
    assert str(private) in message
    assert "Delete it" in message
    assert "stops working" in message
    assert caught.value.path == private
    assert not isinstance(caught.value, KeyError)
    assert private.read_bytes() == content  # never silently replaced


def test_encrypted_private_key_is_refused_with_its_reason(tmp_path: Path) -> None:
    encrypted = shared_key_pair().private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / PRIVATE_KEY_FILE).write_bytes(encrypted)

    with pytest.raises(KeyFileError, match="passphrase"):
        load_or_create_keys(tmp_path)


def test_non_rsa_private_key_is_refused(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / PRIVATE_KEY_FILE).write_bytes(pem)

    with pytest.raises(KeyFileError, match="RSA"):
        load_or_create_keys(tmp_path)


def test_keys_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "keys"
    not_a_dir.write_text("oops")

    with pytest.raises(KeyFileError, match="not a directory"):
        load_or_create_keys(not_a_dir)


@pytest.mark.parametrize("public", [None, b"stale or corrupt"], ids=["missing", "stale"])
def test_public_key_file_is_rederived_from_the_private_key(
    tmp_path: Path, public: bytes | None
) -> None:
    keys = load_or_create_keys(tmp_path)
    public_path = tmp_path / PUBLIC_KEY_FILE
    if public is None:
        public_path.unlink()
    else:
        public_path.write_bytes(public)

    again = load_or_create_keys(tmp_path)

    assert again.private_pem == keys.private_pem
    assert public_path.read_bytes() == keys.public_pem


def test_orphan_public_key_is_replaced_by_a_new_pair(tmp_path: Path) -> None:
    orphan = stranger_key_pair().public_pem
    (tmp_path / PUBLIC_KEY_FILE).write_bytes(orphan)

    keys = load_or_create_keys(tmp_path)

    assert keys.public_pem != orphan
    assert (tmp_path / PUBLIC_KEY_FILE).read_bytes() == keys.public_pem


def test_concurrent_starts_agree_on_one_key_pair(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: load_or_create_keys(tmp_path), range(4)))

    on_disk = (tmp_path / PRIVATE_KEY_FILE).read_bytes()
    assert {keys.private_pem for keys in results} == {on_disk}
    assert (tmp_path / PUBLIC_KEY_FILE).read_bytes() == results[0].public_pem
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_repr_never_shows_the_private_key() -> None:
    keys = shared_key_pair()
    text = repr(keys)

    assert "PRIVATE" not in text
    assert keys.private_pem.decode() not in text


def test_creation_is_logged_with_the_absolute_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with caplog.at_level(logging.INFO, logger="backend.auth.keys"):
        load_or_create_keys(Path("var/keys"))

    assert [r.getMessage() for r in caplog.records] == [
        f"created a new RS256 key pair in {tmp_path.resolve() / 'var' / 'keys'}"
    ]


def test_keys_dir_writable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path.chmod(0o777)

    with caplog.at_level(logging.WARNING, logger="backend.auth.keys"):
        load_or_create_keys(tmp_path)

    assert any("writable by other users" in r.getMessage() for r in caplog.records)


def test_private_key_that_cannot_be_tightened_is_logged_as_an_error_and_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = load_or_create_keys(tmp_path)
    (tmp_path / PRIVATE_KEY_FILE).chmod(0o640)

    def read_only_mount(self: Path, mode: int, **kwargs: Any) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Path, "chmod", read_only_mount)
    with caplog.at_level(logging.WARNING, logger="backend.auth.keys"):
        keys = load_or_create_keys(tmp_path)

    assert keys.private_pem == created.private_pem
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "could not be tightened" in caplog.records[0].getMessage()


def test_unreadable_private_key_names_the_file_and_both_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_or_create_keys(tmp_path)
    real_read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == PRIVATE_KEY_FILE:
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)

    with pytest.raises(KeyFileError) as caught:
        load_or_create_keys(tmp_path)

    message = str(caught.value)
    assert str(tmp_path / PRIVATE_KEY_FILE) in message
    assert "Permission denied" in message
    assert "readable by the backend's user" in message
    assert "Delete it" in message
