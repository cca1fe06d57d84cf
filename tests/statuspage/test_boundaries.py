"""DESIGN §2: the status page imports only the read side of ``monitor.store``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import statuspage

ALLOWED_MONITOR = {"monitor.store.reader", "monitor.store.models", "monitor.store.engine"}
FORBIDDEN = ("textual", "textual_serve", "apscheduler", "backend", "shared")
PACKAGE = Path(statuspage.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_imports_only_the_read_side() -> None:
    sources = sorted(PACKAGE.glob("*.py"))
    assert sources
    for source in sources:
        for name in imported_modules(source):
            if name.split(".")[0] == "monitor":
                assert name in ALLOWED_MONITOR, f"{source.name} imports {name}"
            assert name.split(".")[0] not in FORBIDDEN, f"{source.name} imports {name}"


def test_running_it_loads_no_tui_or_scheduler() -> None:
    code = (
        "import sys, statuspage.app, statuspage.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'textual_serve', 'apscheduler', 'backend') "
        "or m in ('monitor.daemon', 'monitor.config', 'monitor.tui'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
