"""A tab's identity has variables of its own (``QUESTCITY_TUI_TAB_USER``/``_ROLE``), set only by
the serve code that spawns tabs: ``QUESTCITY_TUI_USER``, the single password's Basic-auth user,
exported in a shell no longer turns that shell's terminal TUI into a read-only viewer."""

from __future__ import annotations

from monitor.tui.identity import TAB_ROLE_ENV, TAB_USER_ENV, Identity, Role, default_identity
from monitor.tui.serve import PASSWORD_ENV, PASSWORD_USER_ENV, credentials_from, tab_identity
from monitor.tui.serve_guard import Credentials, Session


def test_the_servers_basic_auth_user_exported_leaves_a_terminal_its_local_admin() -> None:
    shell = {PASSWORD_USER_ENV: "oncall-ops", PASSWORD_ENV: "pw", "QUESTCITY_OPERATOR": "bob"}
    assert credentials_from(shell) == Credentials("oncall-ops", "pw")  # still the server's user
    assert default_identity(shell) == Identity("bob", Role.ADMIN)
    assert Identity.from_environ({PASSWORD_USER_ENV: "oncall-ops"}).role is Role.ADMIN
    assert Identity.from_environ({"QUESTCITY_TUI_ROLE": "viewer"}).role is Role.ADMIN


def test_a_tab_gets_its_own_variables_and_none_of_the_servers() -> None:
    server = {
        PASSWORD_USER_ENV: "oncall-ops",
        PASSWORD_ENV: "pw",
        TAB_USER_ENV: "server-user",
        TAB_ROLE_ENV: "admin",
        "PATH": "/usr/bin",
    }
    session = Session(Identity("victor", Role.VIEWER))
    tab = tab_identity(server, session)
    assert tab == {"PATH": "/usr/bin", TAB_USER_ENV: "victor", TAB_ROLE_ENV: "viewer"}
    assert Identity.from_environ(tab) == Identity("victor", Role.VIEWER)
    assert tab_identity(server, None) == {"PATH": "/usr/bin"}  # loopback: this machine's user
