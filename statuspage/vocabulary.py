"""The public words for the monitor's states, and Atlassian Statuspage's value sets.

The store speaks the backend's words (``healthy``, ``degraded``, ``unhealthy``, ``unreachable``,
``unknown``); the page speaks the words end users and Statuspage integrations know:

==============  ========================  ==================  ==========
store           component status          page indicator      banner
==============  ========================  ==================  ==========
healthy         ``operational``           ``none``            All systems operational
degraded        ``degraded_performance``  ``minor``           Degraded performance
unhealthy       ``partial_outage``        ``major``           Partial outage
unreachable     ``major_outage``          ``critical``        Major outage
unknown         (not published)           —                   No data
==============  ========================  ==================  ==========
"""

from __future__ import annotations

import enum

from monitor.store.models import Status


class ComponentStatus(enum.StrEnum):
    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"


class Indicator(enum.StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class IncidentStatus(enum.StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"

    @property
    def word(self) -> str:
        return self.value.capitalize()


class Condition(enum.Enum):
    """A component's (or a day's, or the page's) state as the page shows it."""

    NO_DATA = 0
    OPERATIONAL = 1
    DEGRADED = 2
    PARTIAL = 3
    MAJOR = 4

    @classmethod
    def of(cls, status: Status) -> Condition:
        return _FROM_STATUS[status]

    @classmethod
    def worst(cls, conditions: list[Condition]) -> Condition:
        return max(conditions, key=lambda c: c.value, default=cls.NO_DATA)

    @property
    def known(self) -> bool:
        return self is not Condition.NO_DATA

    @property
    def api(self) -> ComponentStatus:
        """The Statuspage value; only for known conditions (unknown ones are not published)."""
        if self is Condition.NO_DATA:
            raise ValueError("a component without data has no Statuspage status")
        return _API[self]

    @property
    def indicator(self) -> Indicator:
        return _INDICATOR[self]

    @property
    def word(self) -> str:
        """The status word shown beside a component ("Partial outage")."""
        return _WORD[self]

    @property
    def banner(self) -> str:
        """The page's headline when this is the worst condition of any component."""
        return _BANNER[self]

    @property
    def css(self) -> str:
        """Class name; colours come with an icon and a word, never alone."""
        return _CSS[self]


_FROM_STATUS = {
    Status.HEALTHY: Condition.OPERATIONAL,
    Status.DEGRADED: Condition.DEGRADED,
    Status.UNHEALTHY: Condition.PARTIAL,
    Status.UNREACHABLE: Condition.MAJOR,
    Status.UNKNOWN: Condition.NO_DATA,
}
_API = {
    Condition.OPERATIONAL: ComponentStatus.OPERATIONAL,
    Condition.DEGRADED: ComponentStatus.DEGRADED_PERFORMANCE,
    Condition.PARTIAL: ComponentStatus.PARTIAL_OUTAGE,
    Condition.MAJOR: ComponentStatus.MAJOR_OUTAGE,
}
_INDICATOR = {
    Condition.NO_DATA: Indicator.NONE,
    Condition.OPERATIONAL: Indicator.NONE,
    Condition.DEGRADED: Indicator.MINOR,
    Condition.PARTIAL: Indicator.MAJOR,
    Condition.MAJOR: Indicator.CRITICAL,
}
_WORD = {
    Condition.NO_DATA: "No data",
    Condition.OPERATIONAL: "Operational",
    Condition.DEGRADED: "Degraded performance",
    Condition.PARTIAL: "Partial outage",
    Condition.MAJOR: "Major outage",
}
_BANNER = {
    Condition.NO_DATA: "No data yet",
    Condition.OPERATIONAL: "All systems operational",
    Condition.DEGRADED: "Degraded performance",
    Condition.PARTIAL: "Partial outage",
    Condition.MAJOR: "Major outage",
}
_CSS = {
    Condition.NO_DATA: "none",
    Condition.OPERATIONAL: "ok",
    Condition.DEGRADED: "degraded",
    Condition.PARTIAL: "partial",
    Condition.MAJOR: "major",
}

EMPTY_STORE = "No data yet — the monitor has not checked anything"
"""What a fresh install says: the page and its JSON ``status.description``."""
