"""``questcity --help`` and every command that does not need them stay clear of the heavy
libraries: each part's command module is imported to build the parser, so what those modules
import at their top is paid by every ``questcity`` command (``questcity chaos status`` included).

Proved by what a fresh interpreter has loaded (``sys.modules``) after building the parser and
its help, not by reading import lines: an import done by a module's dependency counts the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("botocore", "boto3", "sqlalchemy", "alembic", "textual", "starlette", "httpx", "uvicorn")

BUILD_PARSER = textwrap.dedent(
    """
    import json, sys
    from questcity.cli import build_parser
    build_parser().format_help()
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_building_the_parser_imports_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUILD_PARSER], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(done.stdout)
    heavy = sorted({name for name in loaded if name.split(".")[0] in HEAVY})
    assert heavy == []
