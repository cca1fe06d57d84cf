"""compose.yaml's api front (deploy/haproxy.cfg) run for real: a real HAProxy, a real DNS server
on 127.0.0.1 standing in for compose's, and replicas on 127.0.0.2, .3 and .4.

The file under test is deploy/haproxy.cfg itself, with only what ties it to Docker changed (the
DNS server's address, the listening and replica ports): the front sends connections to every
replica the name ``backend`` resolves to, stops sending to one whose /ready says 503 (starting or
draining), and follows the DNS answer as replicas come and go — what `--scale` and a recreated
container need.

HAProxy is a system package (Debian's ``haproxy``, installed by scripts/ensure-system-deps);
without it this test fails, naming the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.dns_server import DNSServer
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
READY = "/api/v1/health/ready"
# HAProxy checks every 3 s and takes 2 failures to mark a replica down; DNS answers are held 5 s.
WITHIN = 30.0


@dataclass
class Replica:
    """A stand-in backend: /ready answers 200 or 503; anything else answers its own name."""

    name: str
    ready: bool = True
    served: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("ascii", "replace")
            if path == READY:
                status, body = ("200 OK", b"ready") if self.ready else ("503 Unavailable", b"no")
            else:
                self.served += 1
                status, body = "200 OK", self.name.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def front_config(dns_port: int, front_port: int, replica_port: int) -> str:
    """deploy/haproxy.cfg with its Docker-only values pointed at the test's servers."""
    text = HAPROXY_CFG.read_text(encoding="utf-8")
    swaps = [
        (r"^(\s*)parse-resolv-conf$", rf"\1nameserver test 127.0.0.1:{dns_port}"),
        (r"^(\s*)bind :8000$", rf"\1bind 127.0.0.1:{front_port}"),
        (r"(server-template \S+ \d+ backend):8000$", rf"\1:{replica_port}"),
    ]
    for pattern, replacement in swaps:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count == 1, f"deploy/haproxy.cfg no longer has exactly one {pattern!r}"
    return text


@dataclass
class Front:
    url: str
    dns: DNSServer
    replicas: dict[str, Replica]

    async def answers(self, requests: int = 8) -> set[str]:
        """Who served ``requests`` requests, each on a new connection (as new clients are)."""
        seen: set[str] = set()
        async with httpx.AsyncClient(timeout=5.0) as client:
            for _ in range(requests):
                try:
                    response = await client.get(self.url, headers={"Connection": "close"})
                except httpx.TransportError:
                    seen.add("<no answer>")
                    continue
                seen.add(response.text if response.status_code == 200 else "<error>")
        return seen


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Front]:
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if haproxy is None:
        pytest.fail(
            "haproxy is missing: bash scripts/ensure-system-deps installs it (Debian: haproxy)",
            pytrace=False,
        )
    replica_port, front_port = free_port(), free_port()
    replicas = {
        ip: Replica(f"replica-{ip.rsplit('.', 1)[1]}")
        for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    }
    for ip, replica in replicas.items():
        replica.server = await asyncio.start_server(replica.handle, ip, replica_port)
    dns = DNSServer()
    await dns.start()
    dns.records = {"backend.": ["127.0.0.2", "127.0.0.3"]}
    config = tmp_path / "haproxy.cfg"
    config.write_text(front_config(dns.port, front_port, replica_port), encoding="utf-8")
    check = await asyncio.create_subprocess_exec(
        haproxy, "-c", "-f", str(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await check.communicate()
    assert check.returncode == 0, output.decode(errors="replace")
    log = (tmp_path / "haproxy.log").open("w")
    process = await asyncio.create_subprocess_exec(
        haproxy, "-db", "-f", str(config), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        yield Front(f"http://127.0.0.1:{front_port}/api/v1/quests", dns, replicas)
    finally:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(process.wait(), 10)
        log.close()
        dns.stop()
        for replica in replicas.values():
            assert replica.server is not None
            replica.server.close()
            await replica.server.wait_closed()


async def test_the_front_follows_dns_and_readiness(front: Front) -> None:
    async def served_by(expected: set[str]) -> bool:
        return await front.answers() == expected

    # Every replica the name resolves to gets connections; .4 is not in the answer yet.
    await eventually(
        lambda: served_by({"replica-2", "replica-3"}), what="both replicas", within=WITHIN
    )
    assert front.replicas["127.0.0.4"].served == 0

    # A draining (or starting) replica says 503 on /ready: it gets no new connections.
    front.replicas["127.0.0.3"].ready = False
    await eventually(lambda: served_by({"replica-2"}), what="only ready ones", within=WITHIN)

    # Replicas come and go in DNS (a --scale, a recreated container): the front follows.
    front.dns.records = {"backend.": ["127.0.0.3", "127.0.0.4"]}
    await eventually(lambda: served_by({"replica-4"}), what="the new DNS answer", within=WITHIN)
