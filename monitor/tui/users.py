"""The browser TUI's users file: who may sign in, with what role (issue #14: people, not a shared
token).

A TOML file named by ``[tui] users_file`` in ``monitor.toml``, written by
``questcity tui user add NAME --role operator`` (which asks for the password)::

    [users.alice]
    role = "operator"
    password = "scrypt$16384$8$5$<salt>$<key>"

    [users."bob@example.org"]   # signs in through the proxy's header only: no password
    role = "admin"

Passwords are kept as scrypt keys (stdlib ``hashlib.scrypt``, OWASP's N=2^14, r=8, p=5, a
random 16-byte salt per user), compared in constant time; a name that is not in the file is
checked against a dummy key of the same cost, so the time taken does not say who exists.

The server re-reads the file when it changes (:class:`UsersFile`); a user removed, or whose
password or role changed, is signed out at their next request. A file that stops parsing signs
everyone out (fail closed) until it is fixed, and the log says where it is wrong. Bounded:
``MAX_FILE_BYTES`` and ``MAX_USERS``; errors name the file, the line and what is wrong.

Whoever can write the file can make themselves an admin, so, as ssh does with its key files, a
file writable by group or others, or owned by anyone but this user or root, is refused (with
the ``chmod``/``chown`` to run). ``user add``/``user remove`` read, change and replace the file
under an exclusive ``flock`` on ``<file>.lock`` (as :mod:`monitor.sqlite_lock` locks a store), so
two engineers adding users at once both land.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.tui.identity import NAME_CHARS, Role

MAX_FILE_BYTES = 256 * 1024
MAX_USERS = 1000
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._@+-]{{0,{NAME_CHARS - 1}}}")
"""Names: a login, or an e-mail address (oauth2-proxy's ``X-Forwarded-Email``). No spaces, no
``:`` (HTTP Basic splits on it), nothing a log line or a TUI cell would show differently."""
SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 5
KEY_BYTES = 32
SALT_BYTES = 16
MAX_SCRYPT_MEMORY = 128 * 1024 * 1024
"""A hash asking for more (a hand-edited N or r) is refused rather than run at every login."""
logger = logging.getLogger("monitor.tui.users")


class UsersFileError(ValueError):
    """The users file cannot be used; the message names the file, the line and the problem."""


class PasswordError(ValueError):
    """A password that cannot be set (too short, too long, not text)."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role
    password_hash: str | None = None
    """``None``: this person signs in only through a trusted proxy's header."""

    @property
    def generation(self) -> str:
        """Changes when the password does: it is signed into sessions and device cookies, so a
        new password signs the old ones out."""
        if self.password_hash is None:
            return ""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def __repr__(self) -> str:  # the hash is not a secret, but a log has no use for it
        return f"Account(name={self.name!r}, role={self.role.value!r})"


# -- hashing ---------------------------------------------------------------------------------------


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$key`` (salt and key in unpadded base64)."""
    check_password(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordError(
            f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters, got {len(password)}"
        )
    if not password.isprintable():
        raise PasswordError("a password must be printable text (no line breaks or tabs)")


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; ``False`` for a malformed hash too."""
    try:
        n, r, p, salt, key = _parse_hash(encoded)
    except ValueError:
        return False
    if len(password) > MAX_PASSWORD:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


_DUMMIES: dict[tuple[int, int, int], str] = {}


def dummy_hash(like: str | None = None) -> str:
    """A hash no password matches, of the cost of ``like`` (a hash from the file; default: the
    default cost): checked for a name that is not in the file, so a wrong name takes as long as
    a wrong password."""
    try:
        n, r, p, _, _ = (
            _parse_hash(like) if like is not None else (SCRYPT_N, SCRYPT_R, SCRYPT_P, b"", b"")
        )
    except ValueError:
        n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    if (n, r, p) not in _DUMMIES:
        _DUMMIES[(n, r, p)] = hash_password(secrets.token_urlsafe(24), n=n, r=r, p=p)
    return _DUMMIES[(n, r, p)]


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAX_SCRYPT_MEMORY, dklen=KEY_BYTES
    )


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """Raises ``ValueError`` saying what is wrong."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("not a password hash written by `questcity tui user add` (scrypt$N$r$p$…)")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise ValueError("a scrypt hash with a malformed number or base64 part") from None
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range (N a power of 2, r 1-32, p 1-16)")
    if 128 * n * r > MAX_SCRYPT_MEMORY:
        raise ValueError(f"scrypt parameters need over {MAX_SCRYPT_MEMORY // 2**20} MiB")
    if len(salt) < 8 or len(key) != KEY_BYTES:
        raise ValueError(
            f"a scrypt hash needs a salt of 8 bytes or more and a {KEY_BYTES}-byte key"
        )
    return n, r, p, salt, key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


# -- the file --------------------------------------------------------------------------------------


def parse_users(text: str, path: Path) -> dict[str, Account]:
    """The accounts in ``text``; raises :class:`UsersFileError` naming the line."""
    lines = text.splitlines()

    def fail(name: str | None, problem: str) -> UsersFileError:
        line = _line_of(lines, name)
        return UsersFileError(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"\(at line (\d+), column \d+\)$", message)
        where = f":{found.group(1)}" if found else ""
        problem = message[: found.start()].strip() if found else message
        raise UsersFileError(f"{path}{where}: not valid TOML: {problem}") from None
    except RecursionError:
        raise UsersFileError(f"{path}: tables nested too deeply for a users file") from None
    unknown = sorted(set(data) - {"users"})
    if unknown:
        raise fail(None, f"unknown section {unknown[0]!r}; a users file has only [users.NAME]")
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise fail(None, "users must be tables: [users.NAME]")
    if len(users) > MAX_USERS:
        raise fail(None, f"{len(users)} users; at most {MAX_USERS}")
    accounts = {}
    for name, entry in users.items():
        shown = name[:40]
        if not NAME.fullmatch(name):
            raise fail(
                name,
                f"user name {shown!r}: 1 to {NAME_CHARS} letters, digits or . _ @ + -, "
                "starting with a letter or digit",
            )
        if not isinstance(entry, dict):
            raise fail(name, f"users.{name}: must be a table with a role (and a password)")
        extra = sorted(set(entry) - {"role", "password"})
        if extra:
            raise fail(name, f"users.{name}: unknown key {extra[0]!r}; expected role, password")
        try:
            role = Role(str(entry.get("role")))
        except ValueError:
            choices = ", ".join(role.value for role in Role)
            raise fail(
                name, f"users.{name}.role: must be one of {choices}, got {entry.get('role')!r}"
            ) from None
        password = entry.get("password")
        if password is not None:
            if not isinstance(password, str):
                raise fail(name, f"users.{name}.password: must be a hash string")
            try:
                _parse_hash(password)
            except ValueError as error:
                raise fail(name, f"users.{name}.password: {error}") from None
        accounts[name] = Account(name, role, password)
    return accounts


def load_users(path: Path) -> dict[str, Account]:
    try:
        with path.open("rb") as file:
            _check_access(path, os.fstat(file.fileno()))  # the file read, not one swapped in
            raw = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsersFileError(
            f"{path}: no such file; create it with `questcity tui user add NAME --role ROLE`"
        ) from None
    except OSError as error:
        raise UsersFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise UsersFileError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; not a users file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsersFileError(f"{path}: not UTF-8 text") from None
    return parse_users(text, path)


def _check_access(path: Path, status: os.stat_result) -> None:
    """Refuse a file others could have written an admin into (ssh's rule for its key files)."""
    if status.st_mode & 0o022:
        raise UsersFileError(
            f"{path}: writable by group or others (mode {status.st_mode & 0o777:03o}): anyone "
            f"who can write it can make themselves an admin; run `chmod 600 {path}`"
        )
    if status.st_uid not in (0, os.geteuid()):
        raise UsersFileError(
            f"{path}: owned by uid {status.st_uid}, not by this user (uid {os.geteuid()}) or "
            f"root: its owner could make themselves an admin; run `chown {os.geteuid()} {path}`"
        )


def _line_of(lines: list[str], name: str | None) -> int | None:
    if name is None:
        return None
    for number, line in enumerate(lines, start=1):
        header = re.match(r"\s*\[\s*users\s*\.\s*(.+?)\s*\]", line)
        if header and header.group(1).strip("\"'") == name:
            return number
    return None


def render_users(accounts: Mapping[str, Account]) -> str:
    """The file's text, users in name order (what ``user add`` writes)."""
    out = [
        "# The browser TUI's users (questcity tui user add NAME --role viewer|operator|admin).",
        "# Passwords are scrypt hashes; an entry without one signs in through the proxy header.",
    ]
    for name in sorted(accounts):
        account = accounts[name]
        out += ["", f'[users."{name}"]', f'role = "{account.role.value}"']
        if account.password_hash is not None:
            out.append(f'password = "{account.password_hash}"')
    return "\n".join(out) + "\n"


def write_users(path: Path, accounts: Mapping[str, Account]) -> None:
    """Replace the file atomically (a reading server never sees half of it), mode 0600."""
    if len(accounts) > MAX_USERS:
        raise UsersFileError(f"{path}: at most {MAX_USERS} users")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(render_users(accounts))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def set_user(path: Path, name: str, role: Role, password: str | None) -> bool:
    """Add ``name`` or change their role and password (``None``: header sign-in only, which
    removes a password they had). Returns whether the user was new."""
    if not NAME.fullmatch(name):
        raise UsersFileError(
            f"user name {name[:40]!r}: 1 to {NAME_CHARS} letters, digits or . _ @ + -, "
            "starting with a letter or digit"
        )
    hashed = hash_password(password) if password is not None else None  # before the lock
    with locked(path):
        accounts = load_users(path) if path.exists() else {}
        new = name not in accounts
        accounts[name] = Account(name, role, hashed)
        write_users(path, accounts)
    return new


def remove_user(path: Path, name: str) -> bool:
    with locked(path):
        accounts = load_users(path)
        if accounts.pop(name, None) is None:
            return False
        write_users(path, accounts)
    return True


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``<file>.lock`` for a read-change-replace of the users file:
    the file itself is replaced (a new inode), so it cannot carry the lock. Waits for another
    ``user add``/``remove`` to finish (a moment); the kernel drops the lock if one dies."""
    lock = lock_path(path)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise UsersFileError(
            f"{lock}: cannot open the users file's lock ({error.strerror or error})"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class UsersFile:
    """The file as the server sees it: re-read when its size, time or inode changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self.accounts: dict[str, Account] = load_users(path)  # at start a bad file is fatal
        self._stamp = self._stat()
        self.error: str | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            status = self.path.stat()
        except OSError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def refresh(self) -> bool:
        """Re-read the file if it changed; whether the accounts (or the error) changed. A file
        that no longer loads leaves no accounts (fail closed) and ``error`` saying why."""
        stamp = self._stat()
        if stamp == self._stamp and stamp is not None:
            return False
        self._stamp = stamp
        try:
            accounts = load_users(self.path)
        except UsersFileError as error:
            if self.error != str(error):
                logger.error("users file unusable, every browser session ends: %s", error)
            changed = bool(self.accounts) or self.error != str(error)
            self.accounts, self.error = {}, str(error)
            return changed
        changed = accounts != self.accounts or self.error is not None
        if self.error is not None:
            logger.warning("users file %s usable again (%d users)", self.path, len(accounts))
        self.accounts, self.error = accounts, None
        return changed
