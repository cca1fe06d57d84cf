"""Re-exported from :mod:`questcity.embedded.s3`: the same servers `questcity up` runs."""

from questcity.embedded.s3 import *  # noqa: F403
