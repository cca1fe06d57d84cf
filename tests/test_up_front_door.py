"""``questcity up``'s TLS front door (#16): its self-signed certificate (EC P-256, localhost and
127.0.0.1, 90 days) is made once in the stack's run directory, reused while it has 30 days left,
made anew when it has fewer, is missing or is not ours to trust; the door passes HTTPS through to
the backend and answers 502 when the backend cannot be reached in time; its bounds hold against
idle and hostile local clients (a slot taken at accept or the connection closed at once, a
handshake deadline, an idle timeout, all on a clock the tests move by hand), so a real request is
answered again once they have been dropped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Iterator, Sequence
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
    CertificateDirectoryError,
    ensure_certificate,
    make_certificate,
)
from questcity.embedded.front_door import BAD_GATEWAY, FrontDoor, Limits
from questcity.embedded.ports import free_port
from questcity.front_door_stage import door_certificate
from questcity.preflight import StackError
from shared.resilience.testing import FakeClock, settle
from tests.support.polling import eventually
from tests.support.tls_server import self_signed

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


def test_the_one_maker_takes_names_and_validity_as_the_tests_servers_need() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = make_certificate(
        key, not_before=NOW - _days(10), not_after=NOW - _days(1), names=("ca.test", "10.0.0.1")
    )
    assert (certificate.not_valid_before_utc, certificate.not_valid_after_utc) == (
        NOW - _days(10),
        NOW - _days(1),
    )
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["ca.test"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    # tests/support/tls_server.py's certificates are made by it: the same extensions.
    pem, _ = self_signed(("x.test",), NOW, NOW + _days(1))
    theirs = x509.load_pem_x509_certificate(pem)
    assert [e.oid for e in theirs.extensions] == [e.oid for e in certificate.extensions]
    with pytest.raises(ValueError, match="at least one name"):
        make_certificate(key, not_before=NOW, not_after=NOW + _days(1), names=())


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


def test_its_directory_is_made_private_and_an_open_one_of_ours_is_closed(tmp_path: Path) -> None:
    made = ensure_certificate(tmp_path / "var" / "up" / "tls", now=NOW)
    assert stat.S_IMODE(made.cert.parent.stat().st_mode) == 0o700
    made.cert.parent.chmod(0o755)  # as an earlier up left it
    ensure_certificate(made.cert.parent, now=NOW)
    assert stat.S_IMODE(made.cert.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("spoil", ["a symlink to a directory", "a file", "another user's"])
def test_a_directory_that_is_not_ours_is_refused_in_one_line(
    tmp_path: Path, spoil: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "tls"
    if spoil == "a symlink to a directory":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        directory.symlink_to(tmp_path / "elsewhere")
    elif spoil == "a file":
        directory.write_text("")
    else:
        directory.mkdir(mode=0o700)
        monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)  # (for this test)
    with pytest.raises(CertificateDirectoryError) as refused:
        ensure_certificate(directory, now=NOW)
    message = str(refused.value)
    assert "\n" not in message and str(directory) in message and "remove it" in message
    assert not (tmp_path / "elsewhere" / KEY_FILE).exists()
    # up says it as a StackError, as it does every reason it cannot start.
    with pytest.raises(StackError, match=r"front door's certificate: .* remove it"):
        asyncio.run(door_certificate(directory))


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


# -- the door's bounds ---------------------------------------------------------------------------
# On a FakeClock: a deadline passes when a test moves the clock past it, never by waiting for it.

SMALL = Limits(connections=4)
"""A cap of four; the deadlines are the door's own (10 s, 3 s, 60 s of the fake clock)."""
SAFETY = 5.0
"""Real seconds a test waits for I/O that is due now, before it fails rather than hang."""

Client = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A backend that says back what it is told, for as long as the connection lasts."""
    with contextlib.suppress(OSError):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _door(
    tmp_path: Path, upstream: tuple[str, int], limits: Limits, clock: FakeClock
) -> FrontDoor:
    paths = ensure_certificate(tmp_path)
    return await FrontDoor(
        ("127.0.0.1", free_port()),
        upstream=upstream,
        cert=paths.cert,
        key=paths.key,
        limits=limits,
        clock=clock,
    ).start()


def _trusting(tmp_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=tmp_path / CERT_FILE)


def _watch(reader: asyncio.StreamReader) -> asyncio.Task[bool]:
    """A task that ends (True) once the door closes this connection: EOF or reset."""

    async def closed() -> bool:
        try:
            return await reader.read(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    return asyncio.create_task(closed())


async def _closed(watch: asyncio.Task[bool]) -> bool:
    return await asyncio.wait_for(watch, SAFETY)


async def _hang_up(clients: list[Client], watches: Sequence[asyncio.Task[bool]] = ()) -> None:
    for watch in watches:
        watch.cancel()
    for _, writer in clients:
        writer.transport.abort()
    await asyncio.sleep(0)  # (their sockets are closed on the next turn of the loop)


async def _holds(condition: bool) -> bool:
    return condition


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_the_cap_holds_a_connection_past_it_is_closed_at_once(
    tmp_path: Path, backend: tuple[str, int]
) -> None:
    clock = FakeClock()
    door = await _door(tmp_path, backend, SMALL, clock)
    before = _descriptors()
    clients = [await asyncio.open_connection(*door.address) for _ in range(20)]
    watches = [_watch(reader) for reader, _ in clients]
    try:
        # None of them speaks TLS; four hold a slot (the clock stands still: their handshake
        # deadline never comes), sixteen are closed at once rather than held waiting for one.
        await eventually(lambda: _holds(door.open + door.refused == 20), "every one taken in")
        assert (door.open, door.refused) == (4, 16)
        await eventually(lambda: _holds(sum(w.done() for w in watches) >= 16), "16 closed")
        await settle()  # (what I/O is due runs: no more are closed)
        assert [w.result() for w in watches if w.done()] == [True] * 16
        # The door's own descriptors: four, not twenty (the twenty are the clients' ends).
        assert _descriptors() - before <= 20 + 4 + 2
        # At their handshake deadline the four go too, and their slots are given back.
        await clock.advance(SMALL.handshake)
        assert all(await asyncio.gather(*(_closed(w) for w in watches)))
        await eventually(lambda: _holds(door.open == 0), "the four slots given back")
        assert (door.dropped, door.refused) == (4, 16)
    finally:
        await _hang_up(clients, watches)
        await door.close()


async def test_a_client_that_never_speaks_tls_is_dropped_at_the_handshake_deadline(
    tmp_path: Path, backend: tuple[str, int]
) -> None:
    clock = FakeClock()
    door = await _door(tmp_path, backend, SMALL, clock)
    try:
        silent = await asyncio.open_connection(*door.address)
        await eventually(lambda: _holds(clock.sleeps == [SMALL.handshake]), "its handshake timed")
        chatty = await asyncio.open_connection(*door.address)
        chatty[1].write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP at a TLS port
        # Plain HTTP is no ClientHello: dropped at once. Silence is dropped at the deadline.
        assert await _closed(_watch(chatty[0]))
        silence = _watch(silent[0])
        await clock.advance(SMALL.handshake - 0.1)
        assert not silence.done() and (door.open, door.dropped) == (1, 1)
        await clock.advance(0.1)
        assert await _closed(silence)
        await eventually(lambda: _holds(door.open == 0), "both slots given back")
        assert door.dropped == 2
        await _hang_up([silent, chatty])
    finally:
        await door.close()


async def test_an_idle_connection_is_cut_after_the_idle_timeout_a_talking_one_is_not(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    door = await _door(tmp_path, echo.sockets[0].getsockname()[:2], SMALL, clock)
    try:
        reader, writer = await asyncio.open_connection(
            *door.address, ssl=_trusting(tmp_path), server_hostname="localhost"
        )
        for turn in range(7):  # a byte every third of the idle timeout: twice it in all
            if turn:
                await clock.advance(SMALL.idle / 3)
            writer.write(b"x")
            assert await asyncio.wait_for(reader.readexactly(1), SAFETY) == b"x"
        assert door.dropped == 0
        cut = _watch(reader)  # then nothing either way
        await clock.advance(SMALL.idle - 0.1)
        assert not cut.done() and door.dropped == 0
        await clock.advance(0.1)
        assert await _closed(cut)
        assert door.dropped == 1
        await eventually(lambda: _holds(door.open == 0), "its slot given back")
        await _hang_up([(reader, writer)])
    finally:
        await door.close()
        echo.close()
        await echo.wait_closed()


async def test_the_door_answers_502_when_the_backend_does_not_accept_in_time(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with _not_accepting() as backend:
        door = await _door(tmp_path, backend, SMALL, clock)
        try:
            reader, writer = await asyncio.open_connection(
                *door.address, ssl=_trusting(tmp_path), server_hostname="localhost"
            )
            writer.write(b"GET /api/v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            timed = [SMALL.handshake, SMALL.connect]
            await eventually(lambda: _holds(clock.sleeps == timed), "the backend's connect timed")
            answer = asyncio.create_task(reader.read())
            await clock.advance(SMALL.connect - 0.1)
            assert not answer.done()
            await clock.advance(0.1)
            assert await asyncio.wait_for(answer, SAFETY) == BAD_GATEWAY
            await _hang_up([(reader, writer)])
        finally:
            await door.close()


@contextlib.contextmanager
def _not_accepting() -> Iterator[tuple[str, int]]:
    """An address whose connect is left unanswered: a listener whose accept queue is full (Linux
    holds backlog + 1, so one connection for ``listen(0)``), so a SYN to it is dropped."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        with socket.create_connection(full.getsockname()):
            yield full.getsockname()[:2]


async def test_a_real_request_is_answered_while_hostile_clients_sit_there(
    tmp_path: Path, backend: tuple[str, int]
) -> None:
    clock = FakeClock()
    door = await _door(tmp_path, backend, SMALL, clock)
    context = _trusting(tmp_path)

    async def get() -> int:
        async with httpx.AsyncClient(verify=context, timeout=SAFETY) as client:
            return (await client.get(door.url("/api/v1/health/live"))).status_code

    async def answered() -> bool:
        try:
            return await get() == 200
        except httpx.TransportError:  # every slot taken: the door closed this one at once
            return False

    hostile: list[Client] = []
    try:
        # Fewer than the cap: a request passes beside them at once.
        hostile += [await asyncio.open_connection(*door.address) for _ in range(3)]
        assert await get() == 200
        await eventually(lambda: _holds(door.open == 3), "its slot given back")
        # Far more than the cap, idle after their handshake or never speaking TLS: the door
        # takes one more (a slot left), closes the rest at once, and answers nothing more...
        for _ in range(20):
            with contextlib.suppress(OSError):
                hostile.append(
                    await asyncio.open_connection(
                        *door.address, ssl=context, server_hostname="localhost"
                    )
                )
            hostile.append(await asyncio.open_connection(*door.address))
        await eventually(lambda: _holds(door.refused >= 39), "the rest closed at once")
        assert door.open == 4 and not await answered()
        # ...until the handshake deadline drops the three that never spoke TLS, and the idle
        # timeout the one that did, while every one of them still holds its end open.
        await clock.advance(SMALL.handshake)
        assert door.dropped == 3
        await eventually(answered, "a request answered beside them")
        await clock.advance(SMALL.idle)
        assert door.dropped == 4
    finally:
        await _hang_up(hostile)
        await door.close()
