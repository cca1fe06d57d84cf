"""Who is at the TUI, and what they may do (issue #14: people, not a shared token).

In a terminal the TUI is its user's own process: the local account, with every action. In a
browser, the guard in front of textual-serve (:mod:`monitor.tui.serve_guard`) signs each
engineer in (a users file, or a trusted header from an authenticating proxy) and starts that
tab's TUI process with ``QUESTCITY_TUI_TAB_USER`` and ``QUESTCITY_TUI_TAB_ROLE`` in its
environment; the process reads them here. The name goes to the backend's audit line and the
incident timeline; the role gates the actions.

These are the tab's own variables, set only by the serve code that spawns tabs
(:func:`monitor.tui.serve.tab_identity`). They are not ``QUESTCITY_TUI_USER``, the name of the
single-password Basic-auth user of ``questcity tui --serve``: an engineer who exports that for
the server and then runs ``questcity tui`` or ``questcity up`` in the same shell stays the local
admin, not a read-only viewer.
"""

from __future__ import annotations

import enum
import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

TAB_USER_ENV = "QUESTCITY_TUI_TAB_USER"
TAB_ROLE_ENV = "QUESTCITY_TUI_TAB_ROLE"
NAME_CHARS = 100


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Action(enum.StrEnum):
    RESET = "reset"
    ACK = "ack"
    SILENCE = "silence"
    NOTE = "note"
    CHECK = "check"
    INCIDENT = "incident"
    """Open, update and post-mortem incidents the public reads (issue #15)."""
    MAINTENANCE = "maintenance"
    """Schedule and cancel maintenance windows (issue #15)."""


_ALLOWED = {
    Role.VIEWER: frozenset[Action](),
    Role.OPERATOR: frozenset(Action),
    Role.ADMIN: frozenset(Action),
}


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    role: Role

    def may(self, action: Action) -> bool:
        return action in _ALLOWED[self.role]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Identity:
        """The signed-in engineer of a browser tab, else this terminal's local user (admin).

        A tab whose role is missing or unknown is a viewer: the guard always sets both, so
        anything else is a mistake that must not grant more than reading."""
        user = clean_name(environ.get(TAB_USER_ENV, ""))
        if not user:
            return cls(clean_name(_local_user()) or "local", Role.ADMIN)
        try:
            role = Role(environ.get(TAB_ROLE_ENV, ""))
        except ValueError:
            role = Role.VIEWER
        return cls(user, role)


def clean_name(name: str) -> str:
    """A name fit for an audit line and a TUI cell: printable, one line, bounded."""
    return "".join(c for c in name[: NAME_CHARS * 4] if c.isprintable()).strip()[:NAME_CHARS]


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


GATED = {action.value: action for action in (Action.RESET, Action.CHECK, Action.NOTE)}
"""The app's actions (by their binding's name) that a role gates."""
VERBS = {
    Action.RESET: "reset a breaker",
    Action.CHECK: "check a target now",
    Action.NOTE: "add a note",
    Action.ACK: "acknowledge an alert",
    Action.SILENCE: "silence alerts",
    Action.INCIDENT: "write incidents for the status page",
    Action.MAINTENANCE: "schedule or cancel maintenance",
}
VIEWER_REFUSAL = "viewer accounts can only read; ask an operator"


def refusal(identity: Identity, action: str) -> str:
    """Why ``identity`` may not do ``action``: ``Not done: alice is signed in as a viewer —
    viewer accounts can only read; ask an operator to reset a breaker.``"""
    try:
        verb = VERBS[Action(action)]
    except ValueError:
        verb = "do that"
    return (
        f"Not done: {identity.name} is signed in as a {identity.role.value} — "
        f"{VIEWER_REFUSAL} to {verb}."
    )


def default_identity(environ: Mapping[str, str] | None, actor: str | None = None) -> Identity:
    """The engineer at this TUI: a browser tab's signed-in user and role
    (:meth:`Identity.from_environ`); in a terminal, the local account as admin, named
    ``actor`` or ``$QUESTCITY_OPERATOR`` when given."""
    env = os.environ if environ is None else environ
    identity = Identity.from_environ(env)
    if env.get(TAB_USER_ENV, "").strip():
        return identity  # signed in through the guard: nobody renames themselves
    named = clean_name(actor or "") or clean_name(default_actor(env))
    return replace(identity, name=named) if named else identity


def default_actor(environ: Mapping[str, str] | None = None) -> str:
    """Who the TUI writes as in incident timelines: ``$QUESTCITY_OPERATOR``, else the login."""
    env = os.environ if environ is None else environ
    named = env.get("QUESTCITY_OPERATOR", "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "on-call"
