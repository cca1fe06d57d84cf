"""The self-signed certificate of ``questcity up``'s TLS front door
(:mod:`questcity.embedded.front_door`).

    paths = ensure_certificate(Path("var/up/tls"))
    paths.cert, paths.key          # PEM files: the listener's chain and key; ``cert`` is also
                                   # the CA file a client trusts (``ca_file`` in monitor.toml)

One EC P-256 key and a certificate for ``localhost`` and ``127.0.0.1`` (and ``::1``), valid
:data:`VALID_DAYS` days, signed by its own key. Kept in the stack's run directory and reused by
later runs — a browser or a ``curl --cacert`` told to trust it keeps trusting it — and made anew
when it has fewer than :data:`RENEW_DAYS` days left, is missing, or is not ours to trust (a
symlink, another owner's, a key readable by others, a key that does not match, a file that does
not parse). Its directory is made private (0700); one that is a symlink or another user's is
refused, with a line that says to remove it. With 90 days' validity renewed at 30 days left,
the monitor's check of it (``min_days`` 14, ``warn_days`` 30) stays healthy on a stack that is
restarted now and then.

Self-signed, not a private CA: a local stack has one name to serve and one client to tell; a CA
would be one more key to keep. It is its own trust anchor: ``basicConstraints`` CA true (OpenSSL
verifies a chain that ends in it), ``keyUsage`` digital signature and certificate signing,
``extendedKeyUsage`` server authentication.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 90
RENEW_DAYS = 30
"""Fewer days left than this at start: a new certificate (the monitor warns at 30, fails at 14)."""
CERT_FILE = "front-door.pem"
KEY_FILE = "front-door.key"
NAMES = ("localhost", "127.0.0.1", "::1")
"""Its subjectAltNames: a DNS name, or an IP address written as one."""
COMMON_NAME = "QuestCity local front door"
_MAX_FILE = 64 * 1024
"""A PEM of ours is under 2 KiB; anything much bigger is not ours."""


class CertificateDirectoryError(Exception):
    """The certificate's directory is not this user's own: its one line says what to do."""


@dataclass(frozen=True, slots=True)
class CertificatePaths:
    cert: Path
    """The certificate (PEM): the listener's chain, and the file clients trust."""
    key: Path
    """Its private key (PEM, PKCS#8, mode 0600)."""
    not_after: datetime.datetime
    """When it expires (UTC)."""
    made: bool
    """Whether this call made it (False: the one on disk was kept)."""


def ensure_certificate(
    directory: Path, *, now: datetime.datetime | None = None
) -> CertificatePaths:
    """The certificate in ``directory``, made there (the directory too) unless one of ours is
    there with at least :data:`RENEW_DAYS` days left at ``now`` (default: the current time).
    A :class:`CertificateDirectoryError` when ``directory`` is a symlink, not a directory, or
    another user's."""
    now = now or datetime.datetime.now(datetime.UTC)
    _own_directory(directory)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    kept = _usable(cert_path, key_path, now)
    if kept is not None:
        return CertificatePaths(cert_path, key_path, kept, made=False)
    key = ec.generate_private_key(ec.SECP256R1())
    # Valid from a minute before now: clocks disagree by a little.
    certificate = make_certificate(
        key,
        not_before=now - datetime.timedelta(minutes=1),
        not_after=now + datetime.timedelta(days=VALID_DAYS),
    )
    _write_private(key_path, private_pem(key), mode=0o600)
    _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return CertificatePaths(cert_path, key_path, certificate.not_valid_after_utc, made=True)


def make_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    names: Sequence[str] = NAMES,
    common_name: str = COMMON_NAME,
) -> x509.Certificate:
    """A certificate for ``names`` (each a DNS name, or an IP address written as one), signed by
    ``key`` itself, valid from ``not_before`` to ``not_after`` (aware datetimes). It is its own
    trust anchor: its PEM is also the CA file that trusts exactly it. (The tests' TLS servers
    make theirs here too: ``tests/support/tls_server.py``.)"""
    if not names:
        raise ValueError("a certificate needs at least one name")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "questcity up"),
        ]
    )
    public = key.public_key()
    alternatives = [_alternative(n) for n in names]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """``key`` as an unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _alternative(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _own_directory(directory: Path) -> None:
    """Make ``directory`` (mode 0700) unless it is there; then require that it is a directory
    of this user's, not a symlink (the key's ``O_NOFOLLOW`` guards only its last step), and
    make it 0700 if it is more open (as an earlier version of ``up`` left it)."""
    what_to_do = "remove it and start again (up makes it anew, private to you)"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # a symlink (ELOOP), a file (ENOTDIR, EEXIST), or no way to make it
        raise CertificateDirectoryError(
            f"{directory} is not a directory of its own (a symlink or a file?): {what_to_do}"
        ) from None
    try:
        facts = os.fstat(descriptor)
        if facts.st_uid != os.getuid():
            raise CertificateDirectoryError(
                f"{directory} belongs to another user (uid {facts.st_uid}): {what_to_do}"
            )
        if stat.S_IMODE(facts.st_mode) & 0o077:
            os.fchmod(descriptor, 0o700)
    finally:
        os.close(descriptor)


def _usable(cert_path: Path, key_path: Path, now: datetime.datetime) -> datetime.datetime | None:
    """The expiry of the certificate on disk when it is ours, its key's and good for
    :data:`RENEW_DAYS` more days; None: make a new one."""
    cert_bytes = _read_own(cert_path, private=False)
    key_bytes = _read_own(key_path, private=True)
    if cert_bytes is None or key_bytes is None:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(cert_bytes)
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        certificate.public_key()
    ):
        return None
    not_after = certificate.not_valid_after_utc
    if certificate.not_valid_before_utc > now:
        return None  # made by a clock ahead of this one: clients would refuse it
    if not_after - now < datetime.timedelta(days=RENEW_DAYS):
        return None
    return not_after


def _read_own(path: Path, *, private: bool) -> bytes | None:
    """The file's bytes when it is a regular file of this user (for a key: readable by no one
    else), not a symlink, and small; None otherwise."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None  # absent, or a symlink (ELOOP)
    with os.fdopen(descriptor, "rb") as file:
        facts = os.fstat(file.fileno())
        if not stat.S_ISREG(facts.st_mode) or facts.st_uid != os.getuid():
            return None
        if private and facts.st_mode & 0o077:
            return None
        data = file.read(_MAX_FILE + 1)
    return data if len(data) <= _MAX_FILE else None


def _write_private(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``path`` anew (what was there, a symlink included, is removed first, so the write
    never follows a link somewhere else) with ``mode``."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
