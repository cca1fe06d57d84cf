"""`questcity up` writes its monitor.toml where every command looks by default (./monitor.toml),
but never over a file the user wrote: then it uses its own under var/up/ and says which
`--config` to pass.

With `--replicas N` the target lists every replica (consecutive ports, `url` the first one);
`--monitors M` without PostgreSQL, a replica's port in use, or a size out of range are refused
before anything starts.

Started cheaply: `up --headless --sqlite` with no SeaweedFS binary ($QUESTCITY_TEST_WEED naming
none) places its config, then stops at the S3 server with one line and exit 1; what it wrote
stays.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from monitor.config import load_config
from questcity.embedded.ports import free_port
from questcity.embedded.postgres import BIN_DIR_ENV as PG_BIN_DIR_ENV
from questcity.embedded.s3 import BINARY_ENV

S3_REFUSAL = "questcity up: the S3 server did not start"


def _up(cwd: Path, backend_port: int) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "questcity",
            "up",
            "--headless",
            "--sqlite",
            "--backend-port",
            str(backend_port),
            "--statuspage-port",
            str(free_port()),
            "--tls-port",
            str(free_port()),
        ],
        cwd=cwd,
        env={**os.environ, BINARY_ENV: str(cwd / "no-weed-here")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Got as far as the S3 server: the config was placed before it.
    assert done.returncode == 1
    assert done.stderr.startswith(S3_REFUSAL), done.stderr
    return done


def _questcity(cwd: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "questcity", *words],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _config_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stdout.splitlines() if "monitor.toml" in line]


def test_a_fresh_directory_gets_monitor_toml_that_commands_read_by_default(
    tmp_path: Path,
) -> None:
    port = free_port()
    done = _up(tmp_path, port)
    written = tmp_path / "monitor.toml"
    assert written.read_text().startswith("# Written by questcity up (sha256 ")
    assert f'url = "http://127.0.0.1:{port}"' in written.read_text()
    public = load_config(written).public  # #15: the page it serves; webhook subscriptions only
    assert public.page.url.startswith("http://127.0.0.1:") and public.page.timezone == "UTC"
    assert (public.subscriptions.enabled, public.subscriptions.email) == (True, False)
    assert _config_lines(done) == []  # nothing to say: it is where everything looks
    current = _questcity(tmp_path, "store", "current")
    assert (current.returncode, current.stderr) == (0, "")
    assert current.stdout == "store revision: none (no store file yet)\n"


def test_a_users_own_monitor_toml_is_left_byte_for_byte_and_the_config_to_pass_named(
    tmp_path: Path,
) -> None:
    mine = b'# mine\n[storage]\nurl = "sqlite:///./var/mine.db"\n'
    (tmp_path / "monitor.toml").write_bytes(mine)
    port = free_port()
    done = _up(tmp_path, port)
    assert (tmp_path / "monitor.toml").read_bytes() == mine
    stacks = tmp_path / "var" / "up" / "monitor.toml"
    assert f'url = "http://127.0.0.1:{port}"' in stacks.read_text()
    [line] = _config_lines(done)
    assert line.startswith("• monitor.toml: monitor.toml is yours, so it stays as it is;")
    assert line.endswith("tui|store|statuspage --config var/up/monitor.toml`")


def test_up_rewrites_its_own_file_but_keeps_one_edited_since(tmp_path: Path) -> None:
    _up(tmp_path, free_port())
    config = tmp_path / "monitor.toml"
    second = free_port()
    _up(tmp_path, second)
    assert f'url = "http://127.0.0.1:{second}"' in config.read_text()  # unchanged: rewritten

    edited = config.read_bytes().replace(b"open_after = 2", b"open_after = 3")
    config.write_bytes(edited)
    done = _up(tmp_path, free_port())
    assert config.read_bytes() == edited
    assert len(_config_lines(done)) == 1


# -- a fleet: --replicas and --monitors ----------------------------------------------------------


def _up_with(
    cwd: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "questcity",
            "up",
            "--headless",
            "--statuspage-port",
            str(free_port()),
            "--tls-port",
            str(free_port()),
            *flags,
        ],
        cwd=cwd,
        env={**os.environ, BINARY_ENV: str(cwd / "no-weed-here"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_replicas_are_the_targets_replicas_on_consecutive_ports(tmp_path: Path) -> None:
    port = free_port(with_offsets=(1, 2))
    done = _up_with(tmp_path, "--sqlite", "--replicas", "3", "--backend-port", str(port))
    assert (done.returncode, done.stderr.startswith(S3_REFUSAL)) == (1, True), done.stderr
    (target,) = load_config(tmp_path / "monitor.toml").targets
    urls = [f"http://127.0.0.1:{port + n}" for n in range(3)]
    assert (target.url, target.replicas) == (urls[0], tuple(urls))


def test_one_replica_is_the_target_url_alone_as_before(tmp_path: Path) -> None:
    port = free_port()
    _up_with(tmp_path, "--sqlite", "--backend-port", str(port))
    (target,) = load_config(tmp_path / "monitor.toml").targets
    assert (target.url, target.replicas) == (f"http://127.0.0.1:{port}", ())
    assert "replicas" not in (tmp_path / "monitor.toml").read_text()


def test_a_replicas_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    port = free_port(with_offsets=(1,))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        done = _up_with(tmp_path, "--sqlite", "--replicas", "2", "--backend-port", str(port))
    assert done.returncode == 1
    assert done.stderr == (
        f"questcity up: port {port + 1} (for the backend api-2) is in use; stop what uses it, "
        "or pick another with --backend-port\n"
    )
    assert not (tmp_path / "var" / "up" / "stack.json").exists()


def test_several_monitors_without_postgresql_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    asked_sqlite = _up_with(tmp_path, "--sqlite", "--monitors", "2")
    assert asked_sqlite.returncode == 1
    assert asked_sqlite.stderr == (
        "questcity up: --monitors 2 needs PostgreSQL for the monitor store; drop --sqlite, or "
        "run one monitor\n"
    )
    none_here = _up_with(
        tmp_path, "--monitors", "3", env={PG_BIN_DIR_ENV: str(tmp_path / "no-postgres-here")}
    )
    assert none_here.returncode == 1
    assert none_here.stderr.startswith(
        "questcity up: --monitors 3 needs PostgreSQL for the monitor store; install postgresql"
    )
    assert not (tmp_path / "monitor.toml").exists()
    assert not (tmp_path / "var" / "up" / "stack.json").exists()


def test_fleet_sizes_out_of_range_are_usage_errors(tmp_path: Path) -> None:
    for flags, message in (
        (("--replicas", "6"), "argument --replicas: must be 1 to 5, got '6'"),
        (("--replicas", "0"), "argument --replicas: must be 1 to 5, got '0'"),
        (("--monitors", "4"), "argument --monitors: must be 1 to 3, got '4'"),
        (("--monitors", "two"), "argument --monitors: must be 1 to 3, got 'two'"),
    ):
        done = _up_with(tmp_path, *flags)
        assert done.returncode == 2
        assert message in done.stderr
        assert not (tmp_path / "monitor.toml").exists()
