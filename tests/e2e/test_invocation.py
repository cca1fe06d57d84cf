"""The hints `questcity up` prints are spelled the way it was run, so they work as typed."""

from __future__ import annotations

from pathlib import Path

from questcity.invocation import command_prefix


def test_under_uv_run_the_hint_is_uv_run() -> None:
    prefix = command_prefix(
        argv0="/src/.venv/bin/questcity",
        parent_name="uv",
        executable="/src/.venv/bin/python",
        which=lambda name: None,
    )
    assert prefix == "uv run questcity"


def test_on_path_the_hint_is_the_bare_command(tmp_path: Path) -> None:
    script = tmp_path / "questcity"
    script.write_text("#!/bin/sh\n")
    prefix = command_prefix(
        argv0=str(script),
        parent_name="bash",
        executable="/usr/bin/python3",
        which={"questcity": str(script)}.get,
    )
    assert prefix == "questcity"


def test_off_path_the_hint_is_the_path_as_typed(tmp_path: Path) -> None:
    prefix = command_prefix(
        argv0=".venv/bin/questcity",
        parent_name="bash",
        executable="/usr/bin/python3",
        which=lambda name: None,
    )
    assert prefix == ".venv/bin/questcity"


def test_as_a_module_the_hint_names_the_python_that_has_it() -> None:
    on_path = {"python3": "/usr/bin/python3"}
    assert (
        command_prefix(
            argv0="/src/questcity/__main__.py",
            parent_name="bash",
            executable="/usr/bin/python3",
            which=on_path.get,
        )
        == "python3 -m questcity"
    )
    # A venv's python is not the python3 on PATH, even though it links to it.
    assert (
        command_prefix(
            argv0="/src/questcity/__main__.py",
            parent_name="bash",
            executable="/my dir/.venv/bin/python",
            which=on_path.get,
        )
        == "'/my dir/.venv/bin/python' -m questcity"
    )
