"""`questcity up` refuses to start with one line that says what is wrong and what to do."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from questcity.embedded.ports import free_port


def test_a_port_in_use_is_named_with_the_option_to_change_it(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "questcity",
                "up",
                "--headless",
                "--backend-port",
                str(port),
                "--statuspage-port",
                str(free_port()),
                "--tls-port",
                str(free_port()),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("questcity up:")]
    assert errors == [
        f"questcity up: port {port} (for the backend) is in use; stop what uses it, or pick "
        "another with --backend-port"
    ]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var" / "up" / "control.sock").exists()


def _up(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "questcity", "up", "--headless"),
            *("--tls-port", str(free_port()), *options),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_replica_on_the_status_pages_port_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """`--backend-port 8080 --replicas 3` gives api-3 8082, the status page's default: each port
    is free alone, so only the overlap can say so before the stack starts."""
    port = free_port(with_offsets=range(1, 4))  # all four free: only the overlap is wrong
    tls = free_port()

    done = _up(
        tmp_path,
        *("--replicas", "3", "--backend-port", str(port), "--statuspage-port", str(port + 2)),
        *("--tls-port", str(tls)),
    )

    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("questcity up:")]
    clear = max(port + 2, tls) + 1  # past every port the stack wants
    assert errors == [
        f"questcity up: port {port + 2} would serve both the backend api-3 and the status page; "
        f"pass --statuspage-port {clear}, or another --backend-port"
    ]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var" / "up" / "logs").exists()  # nothing was started


def test_the_tui_on_the_status_pages_port_is_refused_naming_both(tmp_path: Path) -> None:
    backend, shared, tls = free_port(), free_port(), free_port()

    done = _up(
        tmp_path,
        *("--serve-tui", "--backend-port", str(backend)),
        *("--statuspage-port", str(shared), "--tui-port", str(shared), "--tls-port", str(tls)),
    )

    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("questcity up:")]
    assert errors == [
        f"questcity up: port {shared} would serve both the status page and the TUI in a "
        f"browser; pass --tui-port {max(backend, shared, tls) + 1}, or another --statuspage-port"
    ]
    assert not (tmp_path / "var" / "up" / "logs").exists()
