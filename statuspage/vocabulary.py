"""The public words for the monitor's states, and Atlassian Statuspage's value sets.

The store speaks the backend's words (``healthy``, ``degraded``, ``unhealthy``, ``unreachable``,
``unknown``); the page speaks the words end users and Statuspage integrations know. Which word a
status gets is :mod:`monitor.impact`'s one rule (the daemon's incident titles, the TUI and this
page all use it); its values are re-exported here under their old names:

==============  ========================  ==================  ==========
store           component status          page indicator      banner
==============  ========================  ==================  ==========
healthy         ``operational``           ``none``            All systems operational
degraded        ``degraded_performance``  ``minor``           Degraded performance
unhealthy       ``partial_outage``        ``major``           Partial outage
 … critical     ``major_outage``          ``critical``        Major outage
unreachable     ``major_outage``          ``critical``        Major outage
unknown         (not published)           —                   No data
==============  ========================  ==================  ==========
"""

from __future__ import annotations

import enum

from monitor.i18n import N_
from monitor.impact import ComponentStatus, Condition, Indicator

__all__ = ["EMPTY_STORE", "ComponentStatus", "Condition", "IncidentStatus", "Indicator"]


class IncidentStatus(enum.StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"

    @property
    def word(self) -> str:
        """ "Investigating", in English; a reader's language translates it (the catalogues)."""
        return _INCIDENT_WORD.get(self) or self.value.capitalize()


_INCIDENT_WORD = {
    IncidentStatus.INVESTIGATING: N_("Investigating"),
    IncidentStatus.IDENTIFIED: N_("Identified"),
    IncidentStatus.MONITORING: N_("Monitoring"),
    IncidentStatus.RESOLVED: N_("Resolved"),
    IncidentStatus.POSTMORTEM: N_("Postmortem"),
}

EMPTY_STORE = N_("No data yet — the monitor has not checked anything")
"""What a fresh install says: the page and its JSON ``status.description``."""
