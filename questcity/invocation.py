"""How to type a ``questcity`` command so that it runs the way this one was run.

The hints ``questcity up`` prints (the chaos drill, how to stop it) must work as typed: after
``bash scripts/up`` or ``uv run questcity up`` the command is not on PATH, ``uv run questcity`` is.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path


def command_prefix(
    *,
    argv0: str,
    parent_name: str,
    executable: str,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """``uv run questcity``, ``questcity``, ``.venv/bin/questcity`` or ``python3 -m questcity``.

    ``argv0`` is this process's ``sys.argv[0]``, ``parent_name`` its parent's name (``uv`` when
    run by ``uv run``), ``executable`` the Python running it.
    """
    if parent_name == "uv":
        return "uv run questcity"
    if Path(argv0).name == "questcity":
        on_path = which("questcity")
        if on_path is not None and _same_file(on_path, argv0):
            return "questcity"
        return shlex.quote(argv0)
    for python in ("python3", "python"):
        found = which(python)
        # The path itself, not the file it links to: a venv's python links to the base one,
        # which lacks the venv's packages.
        if found is not None and os.path.abspath(found) == os.path.abspath(executable):
            return f"{python} -m questcity"
    return f"{shlex.quote(executable)} -m questcity"


def current_prefix() -> str:
    """:func:`command_prefix` for this process."""
    try:
        parent = Path(f"/proc/{os.getppid()}/comm").read_text().strip()
    except OSError:
        parent = ""
    return command_prefix(argv0=sys.argv[0], parent_name=parent, executable=sys.executable)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
