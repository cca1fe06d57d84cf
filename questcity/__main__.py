import sys

from questcity.cli import main

sys.exit(main())
