"""The on-call TUI (``questcity tui``), in a terminal or a browser (``questcity tui --serve``).

The app (:class:`monitor.tui.app.MonitorApp`) reads the monitor's history store; the browser mode
(:mod:`monitor.tui.serve`) runs one copy of it per tab through textual-serve, behind a loopback
bind or HTTP authentication. Import :mod:`monitor.tui.app` for the app; this package itself imports
nothing heavy, so ``questcity --help`` stays fast.
"""
