"""The servers :mod:`benchmarks.monitor_checks` checks, each a process of its own (pinned to a core
by the benchmark), answering on many loopback addresses as many hosts would:

    python -m benchmarks._check_servers http --port P --addresses N    # the fleet's app
    python -m benchmarks._check_servers tcp --port P --addresses N     # an echo server
    python -m benchmarks._check_servers tls --port P --addresses N --cert C --key K
    python -m benchmarks._check_servers dns --port P --names N         # UDP, A records

- ``http``: :func:`benchmarks.monitor_fleet.fleet_app` (the backend's detailed and summary
  health JSON, for the health-API targets) that also answers :data:`LIVE` with
  ``{"status": "alive"}`` (for the ``http`` checks), under uvicorn;
- ``tcp``: echoes what it reads until the client closes (a ``tcp`` check's send/expect);
- ``tls``: completes the handshake with the certificate given, then waits for the client to
  close (a ``tls`` check reads the certificate and says goodbye);
- ``dns``: answers ``A`` for :func:`dns_name` ``(n)`` with :func:`dns_address` ``(n)``, NXDOMAIN
  for any other name; built on dnspython's wire format, as ``tests/support/dns_server.py`` is,
  but with the answers made once (that one rebuilds its tables on every question).

Every server also listens on 127.0.0.1 (the benchmark's readiness check). :func:`wait_ready`
polls one until it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from benchmarks._servers import HOST, ServerProcess
from benchmarks.monitor_fleet import Json, address, fleet_app

LIVE = "/api/v1/health/live"
DNS_ZONE = "bench.test."
READ_BYTES = 64 * 1024
"""What one read of the echo and TLS servers takes, at most."""


def dns_name(n: int) -> str:
    return f"svc-{n}.{DNS_ZONE}"


def dns_address(n: int) -> str:
    return f"10.77.{n // 250}.{1 + n % 250}"


def hosts(addresses: int) -> list[str]:
    """127.0.0.1 and the first ``addresses`` of the fleet's loopback addresses."""
    return [HOST, *(address(n) for n in range(addresses))]


# -- the servers ---------------------------------------------------------------------------------


def serve_fleet(port: int, addresses: int) -> None:
    """The fleet's app, with :data:`LIVE` added, on ``addresses`` loopback addresses."""
    import uvicorn

    inner = fleet_app()
    alive = b'{"status":"alive"}'

    async def app(scope: Json, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(LIVE):
            await inner(scope, receive, send)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(alive)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": alive})

    sockets = []
    for host in hosts(addresses):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.set_inheritable(True)
        sockets.append(sock)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=sockets))


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(READ_BYTES):
            writer.write(chunk)
            await writer.drain()
    writer.close()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(READ_BYTES):
            pass
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def _stream_server(port: int, addresses: int, tls: ssl.SSLContext | None) -> None:
    handler = _hold if tls is not None else _echo
    server = await asyncio.start_server(
        handler, hosts(addresses), port, ssl=tls, backlog=1024, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def serve_tls(port: int, addresses: int, cert: Path, key: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    asyncio.run(_stream_server(port, addresses, context))


class _Dns(asyncio.DatagramProtocol):
    def __init__(self, names: int) -> None:
        import dns.name
        import dns.rrset

        self.records = {
            dns.name.from_text(dns_name(n)): dns.rrset.from_text(
                dns_name(n), 60, "IN", "A", dns_address(n)
            )
            for n in range(names)
        }
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        if not query.question or self.transport is None:
            return
        question = query.question[0]
        response = dns.message.make_response(query)
        rrset = self.records.get(question.name)
        if rrset is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(rrset)
        self.transport.sendto(response.to_wire(), addr)


def serve_dns(port: int, names: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: _Dns(names), local_addr=(HOST, port))
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- readiness -----------------------------------------------------------------------------------


def wait_ready(kind: str, port: int, process: ServerProcess, timeout: float = 60.0) -> None:
    """Until the ``kind`` server on ``port`` answers; fails at once if its ``process`` exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if kind == "dns":
                import dns.message
                import dns.query

                query = dns.message.make_query(dns_name(0), "A")
                dns.query.udp(query, HOST, port=port, timeout=0.5)
            else:
                with socket.create_connection((HOST, port), timeout=0.5):
                    pass
            return
        except Exception as error:  # refused, timed out, garbled: not ready yet
            if not process.running:
                raise RuntimeError(f"the {kind} server exited") from error
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not answer on {port}") from error
            process.idle(0.1)  # (fails at once if the server exits meanwhile)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="servers for benchmarks.monitor_checks")
    parser.add_argument("kind", choices=("http", "tcp", "tls", "dns"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--addresses", type=int, default=0)
    parser.add_argument("--names", type=int, default=0)
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    args = parser.parse_args(argv)
    if args.kind == "http":
        serve_fleet(args.port, args.addresses)
    elif args.kind == "tcp":
        asyncio.run(_stream_server(args.port, args.addresses, None))
    elif args.kind == "tls":
        serve_tls(args.port, args.addresses, args.cert, args.key)
    else:
        serve_dns(args.port, args.names)


if __name__ == "__main__":
    main()
