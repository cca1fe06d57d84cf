"""Hatchling build hook: the public's message catalogues compiled, ``.po`` → ``.mo``.

Runs for every build target, the editable install ``uv sync`` makes included, so an installed
QuestCity always has current ``.mo`` files beside its ``.po`` files (monitor/i18n/locales). The
``.mo`` files are not in git (``monitor/i18n/locales/.gitignore``); they are listed as artifacts so
the wheel carries them all the same. Babel, the hook's one dependency, is named in the hook's
table of pyproject.toml.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LOCALES = Path("monitor") / "i18n" / "locales"


class CataloguesHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        root = Path(self.root)
        for po in sorted((root / LOCALES).glob("*/LC_MESSAGES/*.po")):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name, domain=po.stem)
            compiled = io.BytesIO()
            write_mo(compiled, catalog, use_fuzzy=False)
            mo = po.with_suffix(".mo")
            mo.write_bytes(compiled.getvalue())  # newer than its .po: the run time uses it
            self.app.display_info(f"compiled {po.relative_to(root)} -> {mo.name}")
        build_data.setdefault("artifacts", []).append(f"/{LOCALES.as_posix()}/**/*.mo")
