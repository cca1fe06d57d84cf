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
