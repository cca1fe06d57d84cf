"""What checks write to the log under the house set-up (``configure_logging``, as ``questcity
monitor`` runs it): never a URL's user info, password or query, and nothing per request."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from monitor.checks.run import CheckRunner
from monitor.checks.spec import Check, CheckKind, HttpSettings
from monitor.store.models import Status
from shared.resilience import SYSTEM_CLOCK
from shared.resilience.jsonlog import NOISY_LOGGERS, configure_logging
from tests.monitor.checks.http_target import HttpTarget, Reply

PASSWORD = "hunter2-pw"
TOKEN = "tok-SECRET-42"
RUNS = 5


class Records(logging.Handler):
    """Every record that reaches the root logger, whatever its level."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[tuple[io.StringIO, Records]]:
    """The house logging (JSON lines to a stream, at INFO) and every record it is given; the
    process's logging put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = (*NOISY_LOGGERS, "httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:  # as a fresh process has them, whatever ran before
        logging.getLogger(name).setLevel(logging.NOTSET)
    stream = io.StringIO()
    records = Records()
    try:
        configure_logging("INFO", stream)
        root.addHandler(records)
        yield stream, records
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)


async def test_an_http_checks_url_secrets_and_requests_are_not_logged(
    logged: tuple[io.StringIO, Records],
) -> None:
    stream, records = logged
    async with HttpTarget({"/health": Reply(200, b"ok")}) as target:
        url = target.url("/health", userinfo=f"ops:{PASSWORD}") + f"?token={TOKEN}"
        check = Check("front-door", CheckKind.HTTP, HttpSettings(url))
        runner = CheckRunner(SYSTEM_CLOCK)
        try:
            outcomes = [await runner.run(check) for _ in range(RUNS)]
        finally:
            await runner.aclose()
        assert len(target.requests) == RUNS, "the check reached its target"
    assert {outcome.status for outcome in outcomes} == {Status.HEALTHY}
    written = stream.getvalue() + "\n".join(
        f"{record.name} {record.getMessage()}" for record in records.records
    )
    for secret in (PASSWORD, TOKEN):
        assert secret not in written, f"a URL's secret reached the log: {written[:500]}"
    # The hot path: 1,000 http checks at 10 s would be 100 lines a second.
    chatter = [r for r in records.records if r.levelno < logging.WARNING]
    assert chatter == [], [f"{r.name}: {r.getMessage()}" for r in chatter]
