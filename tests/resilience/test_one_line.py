"""shared.resilience.sanitize.one_line: the one rule for text from outside shown on one line
(alert summaries, a backend's error in a summary, names and reasons, Apprise titles)."""

from __future__ import annotations

import pytest

from shared.resilience.sanitize import one_line


@pytest.mark.parametrize(
    ("text", "limit", "line"),
    [
        ("plain", 10, "plain"),
        ("  a\n\tb\x1b[31m  c \r\n", 20, "a b [31m c"),
        ("0123456789", 10, "0123456789"),
        ("0123456789x", 10, "012345678…"),
        ("\u2028line\u2029sep\x00", 20, "line sep"),
        ("x" * 10_000_000, 5, "xxxx…"),
        ("anything", 0, ""),
    ],
)
def test_one_printable_line_cut_with_an_ellipsis(text: str, limit: int, line: str) -> None:
    assert one_line(text, limit) == line


def test_the_callers_share_it() -> None:
    """The alert engine, the rules, the Apprise sink, ack/silence and the self-alerts use it:
    one rule, not five copies drifting apart."""
    from monitor import alert_actions, apprise_sink, self_alerts
    from monitor.alerting import engine, rules

    for module in (engine, rules, apprise_sink, alert_actions, self_alerts):
        assert module.one_line is one_line, module.__name__
