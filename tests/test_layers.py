"""The layout holds: imports point down, no part imports a cycle, and long modules say why.

- The import contracts are ``[tool.importlinter]`` in pyproject.toml (docs/ARCHITECTURE.md draws
  them): each part's allowed neighbours, the status page reading the store's read side only, the
  backend's layers, no import cycles. ``lint-imports`` checks them from the source, without
  importing it; this test runs it, so CI fails on an import that breaks one.
- A backend module missing from the layers contract would be checked against nothing, so every
  top-level module of the backend must have a layer.
- A shipped module over 500 lines says at its top why it is one module (its docstring mentions
  "500 lines" and gives the reason). Tests and benchmarks are not held to it.
"""

from __future__ import annotations

import ast
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("shared", "connection_guard", "backend", "monitor", "statuspage", "questcity")
MAX_LINES = 500

_LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return found


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    report = result.stdout + result.stderr
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", report)
    assert kept is not None, report
    assert (result.returncode, int(kept[2])) == (0, 0), report
    assert int(kept[1]) == len(contracts())


def test_every_part_is_under_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    roots = set(config["tool"]["importlinter"]["root_packages"])
    acyclic = [c for c in contracts() if c["type"] == "acyclic_siblings"]

    assert roots == set(SHIPPED)
    assert [set(c["ancestors"]) for c in acyclic] == [set(SHIPPED)]  # type: ignore[call-overload]


def test_the_policy_library_needs_only_the_standard_library() -> None:
    # The resilience-stdlib contract names today's third-party packages; this catches a new one.
    graph = grimp.build_graph("shared", include_external_packages=True)
    outside = {
        f"{imported} (from {importer})"
        for importer in graph.find_descendants("shared.resilience")
        for imported in graph.find_modules_directly_imported_by(importer)
        if not imported.startswith("shared.")
        and imported.split(".")[0] not in sys.stdlib_module_names
    }

    assert sorted(outside) == []


def test_every_backend_module_has_a_layer() -> None:
    (layers,) = [c for c in contracts() if c["type"] == "layers" and c["containers"] == ["backend"]]
    named = {
        name.strip(" ()")
        for layer in layers["layers"]  # type: ignore[attr-defined]
        for name in re.split(r"[|:]", layer)
    }
    modules = {info.name for info in pkgutil.iter_modules([str(ROOT / "backend")])}

    assert sorted(modules - named) == [], "add these to the backend-layers contract in pyproject"
    assert sorted(named - modules) == []


def long_modules_without_a_reason() -> list[str]:
    offenders = []
    for part in SHIPPED:
        for path in sorted((ROOT / part).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= MAX_LINES:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if "500 lines" not in docstring:
                offenders.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    return offenders


def test_long_modules_say_why_at_their_top() -> None:
    assert long_modules_without_a_reason() == [], (
        "split these, or say in the module docstring why they are over 500 lines"
    )
