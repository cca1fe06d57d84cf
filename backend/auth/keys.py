"""The backend's RS256 signing key pair, kept in ``QUESTCITY_KEYS_DIR``.

Layout: ``jwt_private.pem`` (PKCS#8, mode 0600) and ``jwt_public.pem`` (SubjectPublicKeyInfo,
for anything that only verifies tokens). The private key is the source of truth: the backend
derives the public key from it and rewrites the public file when it is missing or stale.

Several processes may start at once on one directory (``uvicorn --workers N``), so a new private
key is published with a hard link, which fails if the file already exists: exactly one process
wins and every process then signs with the key that is on disk.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger("backend.auth.keys")

PRIVATE_KEY_FILE = "jwt_private.pem"
PUBLIC_KEY_FILE = "jwt_public.pem"
KEY_SIZE = 2048

_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644
_DIR_MODE = 0o700
_REGENERATE = (
    "Delete it to have a new key pair generated at the next start "
    "(every token issued so far then stops working)."
)


class KeyFileError(Exception):
    """A key file or the keys directory cannot be used; the message says what to do."""

    def __init__(self, path: Path, problem: str, remedy: str = _REGENERATE) -> None:
        super().__init__(f"{path}: {problem}. {remedy}")
        self.path = path


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An RSA key pair as PEM bytes and as loaded key objects."""

    private_pem: bytes = field(repr=False)
    public_pem: bytes
    private_key: rsa.RSAPrivateKey = field(repr=False)
    public_key: rsa.RSAPublicKey = field(repr=False)

    @classmethod
    def generate(cls) -> KeyPair:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls._from_key(pem, private_key)

    @classmethod
    def from_private_pem(cls, pem: bytes) -> KeyPair:
        """Load an unencrypted RSA private key; ValueError says what is wrong with it."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except TypeError:  # cryptography's way of saying "this one needs a passphrase"
            raise ValueError(
                "it is encrypted with a passphrase, which the backend cannot use"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError(
                "it is not a readable PEM private key (corrupt or truncated?)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"it holds a {type(key).__name__} key; RS256 needs an RSA key")
        if key.key_size < KEY_SIZE:
            raise ValueError(f"it holds a {key.key_size}-bit RSA key; at least {KEY_SIZE} needed")
        return cls._from_key(pem, key)

    @classmethod
    def _from_key(cls, pem: bytes, private_key: rsa.RSAPrivateKey) -> KeyPair:
        public_key = private_key.public_key()
        public_pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(pem, public_pem, private_key, public_key)


def load_or_create_keys(keys_dir: Path) -> KeyPair:
    """The key pair in ``keys_dir``, generated there first if there is none yet."""
    keys_dir = Path(keys_dir)
    _ensure_directory(keys_dir)
    private_path = keys_dir / PRIVATE_KEY_FILE
    # lexists: a dangling symlink is someone's mistake to report, not a slot to fill.
    if not os.path.lexists(private_path) and _publish_new_file(
        private_path, KeyPair.generate().private_pem, _PRIVATE_MODE
    ):
        # The absolute path: a relative QUESTCITY_KEYS_DIR run from another directory is the
        # usual way to end up with a second, unintended key pair.
        logger.info(
            "created a new RS256 key pair in %s",
            keys_dir.resolve(),
            extra={"event": "jwt_keys_created", "keys_dir": str(keys_dir.resolve())},
        )
    # Whether this process created the key or lost the race to another, sign with the one on disk.
    keys = _read_private_key(private_path)
    _ensure_public_file(keys_dir / PUBLIC_KEY_FILE, keys.public_pem)
    return keys


def _ensure_directory(keys_dir: Path) -> None:
    try:
        keys_dir.mkdir(mode=_DIR_MODE, parents=True)
    except FileExistsError:
        if not keys_dir.is_dir():
            raise KeyFileError(
                keys_dir,
                "exists but is not a directory",
                "Point QUESTCITY_KEYS_DIR at a directory, or move this file away.",
            ) from None
        # Someone able to write here could swap in their own key and mint any token they like.
        if keys_dir.stat().st_mode & 0o022:
            logger.warning(
                "keys directory %s is writable by other users; run chmod 700 on it",
                keys_dir,
                extra={"event": "jwt_keys_dir_writable", "keys_dir": str(keys_dir)},
            )
        return
    except OSError as exc:
        raise KeyFileError(
            keys_dir,
            f"cannot create the keys directory ({exc.strerror})",
            "Create it (mode 700) or set QUESTCITY_KEYS_DIR to a writable place.",
        ) from None
    # mkdir's mode passes through the umask; set it outright so a strange umask can't leave
    # the directory unwritable (or open) to us.
    keys_dir.chmod(_DIR_MODE)


def _read_private_key(path: Path) -> KeyPair:
    try:
        info = path.stat()
    except OSError as exc:
        raise KeyFileError(path, f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(path, "is not a regular file")
    if info.st_mode & 0o077:
        _tighten(path, info.st_mode)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            path,
            f"cannot be read ({exc.strerror})",
            f"Make it readable by the backend's user, or: {_REGENERATE}",
        ) from None
    try:
        return KeyPair.from_private_pem(pem)
    except ValueError as exc:
        raise KeyFileError(path, str(exc)) from None


def _tighten(path: Path, mode: int) -> None:
    try:
        path.chmod(_PRIVATE_MODE)
    except OSError as exc:
        # A read-only mount (a Kubernetes secret, say) can't be fixed from here; refusing to
        # start would not make the key any less exposed, so say it loudly and carry on.
        logger.error(
            "private key %s has mode %03o and could not be tightened to 600 (%s); "
            "other users may be able to read it",
            path,
            stat.S_IMODE(mode),
            exc.strerror,
            extra={"event": "jwt_key_mode_loose", "path": str(path)},
        )
        return
    logger.warning(
        "private key %s had mode %03o; tightened it to 600",
        path,
        stat.S_IMODE(mode),
        extra={"event": "jwt_key_mode_tightened", "path": str(path)},
    )


def _ensure_public_file(path: Path, public_pem: bytes) -> None:
    try:
        current: bytes | None = path.read_bytes()
    except OSError:  # missing or unreadable: (re)write it below
        current = None
    if current == public_pem:
        return
    if current is not None:
        logger.warning(
            "public key %s did not match the private key; rewriting it",
            path,
            extra={"event": "jwt_public_key_rewritten", "path": str(path)},
        )
    try:
        _replace_file(path, public_pem, _PUBLIC_MODE)
    except OSError as exc:
        # The backend verifies with the key derived in memory; only outside verifiers need
        # this file, so its absence is worth a warning, not a failed start.
        logger.warning(
            "could not write public key %s (%s)",
            path,
            exc.strerror,
            extra={"event": "jwt_public_key_unwritable", "path": str(path)},
        )


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    """A fully written, fsynced sibling of ``path``, created with ``mode`` from the start."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL + O_NOFOLLOW: never write through a planted file or symlink. The mode is applied
    # at creation, so the private key is not readable by others even for an instant.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _publish_new_file(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` atomically if it does not exist; False if another process got there first."""
    try:
        temp = _write_temp(path, data, mode)
    except OSError as exc:
        raise KeyFileError(
            path,
            f"cannot be created ({exc.strerror})",
            "Make the keys directory writable by the backend's user.",
        ) from None
    try:
        os.link(temp, path)  # unlike rename, link never replaces an existing file
    except FileExistsError:
        return False
    except OSError:
        # Filesystems without hard links: a rename is still atomic, just not exclusive.
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return True


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    temp = _write_temp(path, data, mode)
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the new directory entry survive a crash; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
