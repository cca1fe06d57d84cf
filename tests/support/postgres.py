"""Re-exported from :mod:`questcity.embedded.postgres`: the same servers `questcity up` runs."""

from questcity.embedded.postgres import *  # noqa: F403
