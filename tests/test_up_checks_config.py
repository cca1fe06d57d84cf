"""The ``[[checks]]`` ``questcity up`` writes into its monitor.toml (#16), as the monitor reads
them: the front door over TLS (public, beside the API), its certificate, PostgreSQL (only when
the stack runs it, its URL from the environment, never in the file) and S3 (only once SeaweedFS
has a URL); and the backend's fault proxy spreads the front door's connections over every
replica, passing over one that is down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.checks.spec import (
    CheckKind,
    HttpSettings,
    PostgresSettings,
    TlsSettings,
)
from monitor.config import parse_config
from questcity.embedded.faultproxy import FaultProxy
from questcity.stack_settings import (
    CHECK_DATABASE_ENV,
    StackChecks,
    place_monitor_config,
    write_monitor_config,
)

CA = Path("/srv/stack/var/up/tls/front-door.pem")


def _config(tmp_path: Path, checks: StackChecks, replicas: tuple[int, ...] = ()) -> str:
    path = write_monitor_config(
        tmp_path / "monitor.toml",
        backend_port=8000,
        interval=2.0,
        replica_ports=replicas,
        page_url="http://127.0.0.1:8082",
        checks=checks,
    )
    return path.read_text(encoding="utf-8")


def test_every_check_of_a_postgresql_stack_as_the_monitor_reads_it(tmp_path: Path) -> None:
    text = _config(tmp_path, StackChecks(18443, CA, "http://127.0.0.1:23456", postgres=True))
    config = parse_config(text, tmp_path / "monitor.toml")
    assert [c.name for c in config.checks] == ["front-door", "front-door-cert", "postgres", "s3"]

    door = config.check("front-door")
    assert door is not None and door.kind is CheckKind.HTTP
    assert isinstance(door.settings, HttpSettings)
    assert door.settings.url == "https://127.0.0.1:18443/api/v1/health/live"
    assert door.settings.ca_file == str(CA)
    # What backend/api/health.py's /live answers: {"status": "alive"}.
    assert [c.text for c in door.conditions] == [
        "[STATUS] == 200",
        "[BODY].status == alive",
        "[RESPONSE_TIME] < 500",
    ]
    assert (door.public, door.title, door.group) == (True, "Front door", "QuestCity")

    cert = config.check("front-door-cert")
    assert cert is not None and isinstance(cert.settings, TlsSettings)
    assert (cert.settings.host, cert.settings.port) == ("127.0.0.1", 18443)
    assert (cert.settings.ca_file, cert.settings.min_days) == (str(CA), 14)
    assert cert.public is False

    database = config.check("postgres")
    assert database is not None and isinstance(database.settings, PostgresSettings)
    assert database.settings.url_env == CHECK_DATABASE_ENV
    assert database.public is False

    s3 = config.check("s3")
    assert s3 is not None and isinstance(s3.settings, HttpSettings)
    assert s3.settings.url == "http://127.0.0.1:23456/"
    assert [c.text for c in s3.conditions] == ["[STATUS] < 500"]  # 403 to an anonymous GET /
    assert s3.public is False

    for check in config.checks:  # every one runs often enough to be seen in a tour
        assert 10 <= check.interval <= 15 and 3 <= check.timeout <= 5
    # The target the stack always had is still there, as it was.
    [target] = config.targets
    assert (target.name, target.url, target.interval) == (
        "questcity-api",
        "http://127.0.0.1:8000",
        2.0,
    )


def test_without_postgresql_or_before_s3_runs_those_checks_are_left_out(tmp_path: Path) -> None:
    text = _config(tmp_path, StackChecks(8443, CA))
    config = parse_config(text, tmp_path / "monitor.toml")
    assert [c.name for c in config.checks] == ["front-door", "front-door-cert"]
    assert "postgres" not in text and "url_env" not in text


def test_replicas_and_checks_side_by_side(tmp_path: Path) -> None:
    text = _config(tmp_path, StackChecks(8443, CA, "http://127.0.0.1:1/", True), (8000, 8001))
    config = parse_config(text, tmp_path / "monitor.toml")
    [target] = config.targets
    assert target.replicas == ("http://127.0.0.1:8000", "http://127.0.0.1:8001")
    assert len(config.checks) == 4
    assert config.checks[-1].settings == HttpSettings(url="http://127.0.0.1:1/")


def test_a_file_up_wrote_with_checks_is_still_its_own_and_rewritten(tmp_path: Path) -> None:
    checks = StackChecks(8443, CA, "http://127.0.0.1:1", True)
    first = place_monitor_config(tmp_path, tmp_path / "run", backend_port=8000, interval=2.0)
    assert "[[checks]]" not in first.path.read_text()
    again = place_monitor_config(
        tmp_path, tmp_path / "run", backend_port=8000, interval=2.0, checks=checks
    )
    assert (again.path, again.kept) == (tmp_path / "monitor.toml", None)
    assert again.path.read_text().count("[[checks]]") == 4


# -- the backend's fault proxy, over every replica ------------------------------------------------


@pytest.fixture
def replicas() -> Iterator[list[socket.socket]]:
    servers = []
    for _ in range(3):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(5)
        servers.append(server)
    yield servers
    for server in servers:
        server.close()


def _accepted_by(servers: list[socket.socket], proxy: FaultProxy) -> int:
    """Connect through ``proxy``; the index of the server that got the connection."""
    with socket.create_connection(proxy.address, timeout=5) as client:
        client.sendall(b"ping")
        for index, server in enumerate(servers):
            server.settimeout(0.5)
            try:
                accepted, _ = server.accept()
            except TimeoutError:
                continue
            with accepted:
                assert accepted.recv(4) == b"ping"
            return index
    raise AssertionError("no replica got the connection")


def test_connections_go_to_each_replica_in_turn_passing_over_one_that_is_down(
    replicas: list[socket.socket],
) -> None:
    first, *others = [s.getsockname()[:2] for s in replicas]
    with FaultProxy(first, name="backend", alternates=others) as proxy:
        assert [_accepted_by(replicas, proxy) for _ in range(3)] == [0, 1, 2]
        replicas[1].close()  # api-2 stops: its turn goes to the next one
        live = [replicas[0], replicas[2]]
        assert sorted(_accepted_by(live, proxy) for _ in range(3)) in ([0, 0, 1], [0, 1, 1])
