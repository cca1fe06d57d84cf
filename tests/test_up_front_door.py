"""``questcity up``'s TLS front door (#16): its self-signed certificate (EC P-256, localhost and
127.0.0.1, 90 days) is made once in the stack's run directory, reused while it has 30 days left,
made anew when it has fewer, is missing or is not ours to trust; the door passes HTTPS through to
the backend and answers 502 when the backend cannot be reached."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from questcity.embedded.certificate import (
    CERT_FILE,
    KEY_FILE,
    RENEW_DAYS,
    VALID_DAYS,
    ensure_certificate,
)
from questcity.embedded.front_door import FrontDoor
from questcity.embedded.ports import free_port

NOW = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


def _days(n: float) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def test_a_new_certificate_is_for_the_local_names_ec_p256_and_90_days(tmp_path: Path) -> None:
    paths = ensure_certificate(tmp_path / "tls", now=NOW)
    assert paths.made and paths.not_after == NOW + _days(VALID_DAYS)
    certificate = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert certificate.issuer == certificate.subject  # self-signed: its own trust anchor
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600


def test_it_is_reused_while_it_has_30_days_left_then_made_anew(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, now=NOW)
    pem = first.cert.read_bytes()
    kept = ensure_certificate(tmp_path, now=NOW + _days(VALID_DAYS - RENEW_DAYS) - _days(0.01))
    assert not kept.made and kept.cert.read_bytes() == pem
    later = NOW + _days(VALID_DAYS - RENEW_DAYS) + _days(0.01)  # 29.99 days left
    renewed = ensure_certificate(tmp_path, now=later)
    assert renewed.made and renewed.cert.read_bytes() != pem
    assert renewed.not_after == later + _days(VALID_DAYS)


@pytest.mark.parametrize(
    "spoil",
    [
        "cert missing",
        "key missing",
        "key readable by others",
        "key of another certificate",
        "cert garbage",
        "cert a symlink",
        "cert from the future",
    ],
)
def test_a_certificate_that_is_not_ours_to_trust_is_made_anew(tmp_path: Path, spoil: str) -> None:
    pem = ensure_certificate(tmp_path, now=NOW).cert.read_bytes()
    cert, key = tmp_path / CERT_FILE, tmp_path / KEY_FILE
    when = NOW + _days(1)
    if spoil == "cert missing":
        cert.unlink()
    elif spoil == "key missing":
        key.unlink()
    elif spoil == "key readable by others":
        key.chmod(0o644)
    elif spoil == "key of another certificate":
        other = ensure_certificate(tmp_path / "other", now=NOW)
        key.unlink()
        key.write_bytes(other.key.read_bytes())
        key.chmod(0o600)
    elif spoil == "cert garbage":
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")
    elif spoil == "cert a symlink":
        elsewhere = tmp_path / "elsewhere.pem"
        elsewhere.write_bytes(cert.read_bytes())
        cert.unlink()
        cert.symlink_to(elsewhere)
    else:
        when = NOW - _days(1)
    again = ensure_certificate(tmp_path, now=when)
    assert again.made
    assert again.cert.read_bytes() != pem
    assert not again.cert.is_symlink() and stat.S_IMODE(again.key.stat().st_mode) == 0o600
    assert ensure_certificate(tmp_path, now=when).made is False  # and kept from then on


# -- the door ------------------------------------------------------------------------------------


async def _backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.1 answer per connection, then close (what a backend behind the door says)."""
    await reader.readuntil(b"\r\n\r\n")
    body = b'{"status":"alive"}'
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    writer.close()


@pytest.fixture
async def backend() -> AsyncIterator[tuple[str, int]]:
    server = await asyncio.start_server(_backend, "127.0.0.1", 0)
    address = server.sockets[0].getsockname()[:2]
    yield address
    server.close()
    await server.wait_closed()


async def test_the_door_passes_https_to_the_backend_trusting_its_own_pem(
    tmp_path: Path, backend: tuple[str, int]
) -> None:
    paths = ensure_certificate(tmp_path)
    door = await FrontDoor(
        ("127.0.0.1", free_port()), upstream=backend, cert=paths.cert, key=paths.key
    ).start()
    try:
        for host in ("127.0.0.1", "localhost"):
            url = door.url("/api/v1/health/live").replace("127.0.0.1", host)
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=paths.cert)) as c:
                answer = await c.get(url)
            assert (answer.status_code, answer.json()) == (200, {"status": "alive"})
        async with httpx.AsyncClient() as stranger:  # the system's CAs do not know it
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await stranger.get(door.url())
    finally:
        await door.close()


async def test_the_door_answers_502_when_the_backend_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = closed.getsockname()[:2]
    paths = ensure_certificate(tmp_path)
    door = await FrontDoor(
        ("127.0.0.1", free_port()), upstream=nowhere, cert=paths.cert, key=paths.key
    ).start()
    try:
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=paths.cert)
        ) as client:
            answer = await client.get(door.url("/api/v1/health/live"))
        assert (answer.status_code, answer.json()) == (502, {"status": "bad gateway"})
    finally:
        await door.close()


async def test_a_taken_port_is_an_os_error(tmp_path: Path) -> None:
    paths = ensure_certificate(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        door = FrontDoor(
            taken.getsockname()[:2], upstream=("127.0.0.1", 1), cert=paths.cert, key=paths.key
        )
        with pytest.raises(OSError, match="in use"):
            await door.start()
