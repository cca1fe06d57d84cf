"""Re-exported from :mod:`questcity.embedded.ports`: the same servers `questcity up` runs."""

from questcity.embedded.ports import *  # noqa: F403
