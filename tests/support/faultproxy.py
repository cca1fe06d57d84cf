"""Re-exported from :mod:`questcity.embedded.faultproxy`: the same servers `questcity up` runs."""

from questcity.embedded.faultproxy import *  # noqa: F403
