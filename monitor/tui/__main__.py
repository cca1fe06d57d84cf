"""``python -m monitor.tui``: the same as ``questcity tui`` (textual-serve starts tabs this way)."""

import sys

from monitor.tui.cli import main

sys.exit(main())
