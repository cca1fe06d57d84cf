"""The words of the TUI's breaker reset: why it is unavailable, the question before it, and what
came of it on each replica.

The reset itself is :func:`monitor.reset.reset_everywhere` (shared with ``questcity breaker
reset``): it reaches every replica the target has now (a fresh :class:`monitor.discovery.Discovery`
resolution), so the question says how many it will touch.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config import Target
from monitor.discovery import Replica
from monitor.reset import ReplicaOutcome
from monitor.tui.formatting import bounded

LISTED_REPLICAS = 8
"""Replica addresses named in the question; the rest are counted."""
MAX_SHOWN = 64
"""Characters shown of a replica's address or instance id (they come from DNS and backends)."""


def unavailable_reason(target: Target) -> str:
    """Why this TUI cannot reset breakers of ``target``, and how to make it able to."""
    if target.admin_token_env is None:
        return (
            f"Breaker reset is unavailable for {target.title}: no admin token is configured. "
            f'Add admin_token_env = "QUESTCITY_ADMIN_TOKEN" to its [[targets]] table in the '
            "config, export that variable with an admin token (questcity token --role admin) "
            "and restart the TUI."
        )
    return (
        f"Breaker reset is unavailable for {target.title}: ${target.admin_token_env} is not set "
        "in this TUI's environment. Export it with an admin token "
        "(questcity token --role admin) and restart the TUI."
    )


def replicas_word(count: int) -> str:
    return f"{count} replica{'s' if count != 1 else ''}"


def reset_title(service: str, target: Target, replicas: Sequence[Replica]) -> str:
    """``Reset s3 on 3 replicas of QuestCity API?``"""
    return (
        f"Reset {bounded(service, MAX_SHOWN)} on {replicas_word(len(replicas))} of {target.title}?"
    )


def reset_question(
    service: str, service_title: str, target: Target, replicas: Sequence[Replica], breaker: str
) -> str:
    listed = [bounded(replica.key, MAX_SHOWN) for replica in replicas[:LISTED_REPLICAS]]
    more = len(replicas) - len(listed)
    where = ", ".join(listed) + (f" and {more} more" if more > 0 else "")
    each = "Each replica closes its own" if len(replicas) > 1 else "The backend closes its"
    return (
        f"{reset_title(service, target, replicas)}\n\n"
        f"The breaker of {service_title} is {breaker} now (last check). {each} breaker at once "
        f"and lets calls through again: {where}."
    )


def outcome_line(outcome: ReplicaOutcome) -> str:
    """One replica's outcome: ``✓ 10.0.0.5:8000 (api-1): open → closed``."""
    mark = "✓" if outcome.ok else "✖"
    who = bounded(outcome.replica, MAX_SHOWN)
    if outcome.instance:
        who += f" ({bounded(outcome.instance, MAX_SHOWN)})"
    reason = outcome.reason or outcome.message
    return f"{mark} {who}: {reason}"
