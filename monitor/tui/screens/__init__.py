"""The TUI's screens: main (every target), detail (one service), alerts, incidents, help, and the
confirm, note and reset outcomes modals."""

from monitor.tui.screens.alerts import AlertsScreen
from monitor.tui.screens.confirm import ConfirmModal
from monitor.tui.screens.detail import DetailScreen
from monitor.tui.screens.help import HelpScreen
from monitor.tui.screens.incidents import IncidentsScreen
from monitor.tui.screens.main import MainScreen
from monitor.tui.screens.note import NoteDraft, NoteModal
from monitor.tui.screens.outcomes import ResetOutcomesModal

__all__ = [
    "AlertsScreen",
    "ConfirmModal",
    "DetailScreen",
    "HelpScreen",
    "IncidentsScreen",
    "MainScreen",
    "NoteDraft",
    "NoteModal",
    "ResetOutcomesModal",
]
