"""The public's strings as ``pybabel extract -F monitor/i18n/babel.cfg`` finds them, in-process.

Only the folders the mapping names are walked (not the whole repository: ``.venv``, ``var``),
with Babel's own mapping parser, path matching and extractors, so the check and the command
can never disagree on what is a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.util import pathmatch

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "monitor" / "i18n" / "babel.cfg"
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}


def _sources() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(relative path, method, options) of every file a section of the mapping takes."""
    with MAPPING.open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)  # type: ignore[no-untyped-call]
    tops = {pattern.split("/", 1)[0] for pattern, _ in method_map}
    seen: set[str] = set()
    for top in sorted(tops):
        for path in sorted((ROOT / top).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if not path.is_file() or relative in seen or "__pycache__" in relative:
                continue
            for pattern, method in method_map:
                if pathmatch(pattern, relative):
                    seen.add(relative)
                    if method != "ignore":
                        yield relative, method, options_map.get(pattern, {})
                    break


def extract() -> Catalog:
    """Every message of the sources, with where each was found."""
    catalog = Catalog(project="QuestCity", fuzzy=False)
    for relative, method, options in _sources():
        for lineno, message, comments, context in extract_from_file(
            method, str(ROOT / relative), keywords=KEYWORDS, options=options
        ):
            catalog.add(
                message, None, [(relative, lineno)], auto_comments=comments, context=context
            )
    return catalog
