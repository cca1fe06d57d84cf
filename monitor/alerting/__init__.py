"""The alert engine, in small modules: :mod:`.samples` (each replica's windows and streaks),
:mod:`.rules` (the conditions and their words), :mod:`.quiet` (silences and acks read from the
store), :mod:`.engine` (each alert's lifecycle). :mod:`monitor.alerts` is the public name."""

from monitor.alerting.engine import AlertEngine

__all__ = ["AlertEngine"]
