"""``monitor.toml``'s ``[storage]`` table, read in one place: where the store is and how long it
keeps what.

Used by the monitor's config (:mod:`monitor.config`) and by the status page's command, which
reads nothing else of ``monitor.toml``: this module imports only the standard library.

```toml
[storage]
url = "sqlite:///./var/monitor.db"     # or postgresql://USER:PASSWORD@HOST/DB
retention_raw_days = 7                 # raw checks
retention_hourly_days = 35             # hourly roll-ups
retention_daily_days = 400             # daily roll-ups
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_STORAGE_URL = "sqlite:///./var/monitor.db"
"""What the monitor uses when ``[storage] url`` is not set."""
URL_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+asyncpg://")
URL_HINT = "use sqlite:///PATH or postgresql://USER:PASS@HOST/DB"


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each kind of history is kept (roll-ups are what long views read)."""

    raw_days: float = 7.0
    hourly_days: float = 35.0
    daily_days: float = 400.0


@dataclass(frozen=True, slots=True)
class StorageSettings:
    url: str = DEFAULT_STORAGE_URL
    retention: Retention = field(default_factory=Retention)


class StorageSettingsError(ValueError):
    """A ``[storage]`` value the store cannot use: ``key`` (``storage.url``), what is wrong, and
    the value given (``None`` when it is not worth quoting)."""

    def __init__(self, key: str, problem: str, value: object = None) -> None:
        self.key = key
        self.problem = problem
        self.value = value
        shown = f", got {value!r}" if value is not None else ""
        super().__init__(f"{key}: {problem}{shown}")


_RETENTION = (
    ("raw_days", "retention_raw_days", 7.0, 3650.0),
    ("hourly_days", "retention_hourly_days", 35.0, 3650.0),
    ("daily_days", "retention_daily_days", 400.0, 36500.0),
)
"""Each retention figure: its field, its key, its default and the most it may be (an absurd
value, ``1e300``, would overflow the store's time arithmetic long after start-up)."""


def storage_settings(table: object) -> StorageSettings:
    """The ``[storage]`` table (``{}`` when the file has none) as settings; raises
    :class:`StorageSettingsError` naming the first key that is wrong."""
    if not isinstance(table, Mapping):
        raise StorageSettingsError("storage", "must be a table ([storage])", None)
    url = table.get("url", DEFAULT_STORAGE_URL)
    if not isinstance(url, str) or not url.strip():
        raise StorageSettingsError("storage.url", "must be a non-empty string", url)
    url = url.strip()
    if not url.startswith(URL_SCHEMES):
        raise StorageSettingsError("storage.url", URL_HINT, url)
    days: dict[str, float] = {}
    for name, key, default, most in _RETENTION:
        value = table.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and 0 < value <= most)
        ):
            raise StorageSettingsError(
                f"storage.{key}", f"must be a number greater than 0 and at most {most:g}", value
            )
        days[name] = float(value)
    return StorageSettings(url, Retention(**days))
