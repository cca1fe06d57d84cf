"""Process-wide switches, read only on slow paths."""

waits_disabled = False
