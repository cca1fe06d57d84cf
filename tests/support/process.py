"""Re-exported from :mod:`questcity.embedded.process`: the same servers `questcity up` runs."""

from questcity.embedded.process import *  # noqa: F403
