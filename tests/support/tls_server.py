"""A real TLS server on 127.0.0.1 for ``tls`` check tests, with a certificate made on the spot.

:func:`self_signed` makes a self-signed EC P-256 certificate (fast: no RSA key generation) for
some names, valid between two instants; its PEM is both the server's certificate and, written to
a file, the ``ca_file`` a check trusts. :class:`TLSServer` serves it on the test's event loop:
``async with TLSServer(tmp_path, days=40) as server`` gives ``server.port`` and
``server.ca_file``. ``days`` may be negative (an expired certificate); ``names`` set its
subjectAltName (a DNS name, or an IP address written as one). :class:`StallServer` accepts TCP
connections and never answers: a TLS handshake against it waits until its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from questcity.embedded.certificate import make_certificate, private_pem

DEFAULT_NAMES = ("localhost", "127.0.0.1")


def self_signed(
    names: Sequence[str], not_before: dt.datetime, not_after: dt.datetime
) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)``: a self-signed certificate for ``names`` (the first is also its
    common name; an IP address becomes an IP subjectAltName), valid from ``not_before`` to
    ``not_after`` (aware datetimes). It is its own CA (``CA:TRUE``), so its PEM works as a
    ``ca_file`` that trusts exactly it. Made by the one maker ``questcity up``'s front door uses
    (:func:`questcity.embedded.certificate.make_certificate`)."""
    if not names:
        raise ValueError("a certificate needs at least one name")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = make_certificate(
        key, not_before=not_before, not_after=not_after, names=names, common_name=names[0]
    )
    return certificate.public_bytes(serialization.Encoding.PEM), private_pem(key)


def validity(days: float) -> tuple[dt.datetime, dt.datetime]:
    """``(not_before, not_after)`` for a certificate with ``days`` left from now; negative:
    expired that long ago (and issued ten days before it expired)."""
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    return min(now, not_after) - dt.timedelta(days=10), not_after


class TLSServer:
    """Serves a fresh self-signed certificate: completes the handshake, then closes."""

    def __init__(
        self, directory: Path, *, days: float = 90.0, names: Sequence[str] = DEFAULT_NAMES
    ) -> None:
        self.cert_pem, self.key_pem = self_signed(names, *validity(days))
        self.ca_file = directory / "tls-server-cert.pem"
        self.ca_file.write_bytes(self.cert_pem)
        self._key_file = directory / "tls-server-key.pem"
        self._key_file.write_bytes(self.key_pem)
        self.host = "127.0.0.1"
        self.port = 0
        self.handshakes = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TLSServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, self._key_file)
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.read(1)  # until the client goes away
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


class StallServer:
    """Accepts TCP connections and says nothing: a TLS client waits for the server's hello."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> StallServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
