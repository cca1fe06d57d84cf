"""JSON log lines: core fields, every ``extra`` field, exceptions, and an idempotent set-up."""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.resilience import CircuitState, Jitter, RetryConfig, RetryPolicy
from shared.resilience.jsonlog import NOISY_LOGGERS, JsonFormatter, configure_logging
from shared.resilience.testing import FakeClock


class QuotaExceeded(Exception):
    """An exception class outside builtins, to see its qualified name."""


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def log(stream: io.StringIO) -> Iterator[logging.Logger]:
    """A logger of its own, writing JSON to ``stream`` only."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.observability.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_one_json_line_with_the_core_fields(
    log: logging.Logger, stream: io.StringIO
) -> None:
    log.info("quest %s completed by %d players", "Kazan Kremlin", 3)
    (record,) = lines(stream)
    assert list(record)[:4] == ["ts", "level", "logger", "message"]
    assert record["level"] == "INFO"
    assert record["logger"] == "tests.observability.json"
    assert record["message"] == "quest Kazan Kremlin completed by 3 players"
    ts = record["ts"]
    assert isinstance(ts, str)
    assert ts.endswith("Z")
    moment = datetime.fromisoformat(ts)
    assert moment.tzinfo is not None
    assert moment.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60


def test_every_extra_field_is_kept_and_core_fields_win_collisions(
    log: logging.Logger, stream: io.StringIO
) -> None:
    log.warning(
        "odd values",
        extra={
            "event": "audit",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "nothing": None,
            "tags": ["a", "b"],
            "state": CircuitState.OPEN,
            "where": Path("/var/questcity"),
            "seen": {"b", "a"},
            "blob": b"\xffbytes",
            "nan": math.nan,
            "thing": object(),
            "level": "mine",
            "ts": 0,
        },
    )
    (record,) = lines(stream)
    assert record["level"] == "WARNING"
    assert record["extra_level"] == "mine"
    assert record["extra_ts"] == 0
    assert record["event"] == "audit"
    assert (record["count"], record["ratio"], record["ok"], record["nothing"]) == (
        3,
        0.5,
        True,
        None,
    )
    assert record["tags"] == ["a", "b"]
    assert record["state"] == "open"
    assert record["where"] == "/var/questcity"
    assert record["seen"] == ["a", "b"]
    assert record["blob"] == "\ufffdbytes"
    assert record["nan"] == "nan"
    assert isinstance(record["thing"], str)
    assert record["thing"].startswith("<object object")


async def test_a_retry_log_from_the_policy_library_carries_its_structured_fields(
    stream: io.StringIO,
) -> None:
    configure_logging("INFO", stream)
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return "ok"

    config = RetryConfig(max_attempts=3, base_delay=0.25, max_delay=1.0, jitter=Jitter.NONE)
    policy = RetryPolicy(config, name="database", clock=FakeClock(autojump=True))
    assert await policy.call(flaky) == "ok"

    records = [r for r in lines(stream) if r["logger"] == "shared.resilience.retry"]
    assert [(r["event"], r["attempt"], r["wait"]) for r in records] == [
        ("retry", 1, 0.25),
        ("retry", 2, 0.5),
    ]
    first = records[0]
    assert first["level"] == "WARNING"
    assert first["policy"] == "database"
    assert first["max_attempts"] == 3
    assert first["cause"] == "ConnectionRefusedError"
    assert first["message"] == (
        "database: attempt 1 of 3 failed (ConnectionRefusedError); retrying in 0.250 s"
    )


async def test_a_give_up_is_logged_with_its_reason_and_the_error_with_its_note(
    stream: io.StringIO,
) -> None:
    configure_logging("INFO", stream)

    async def down() -> str:
        raise ConnectionRefusedError(111, "Connection refused")

    config = RetryConfig(max_attempts=2, base_delay=0.1, max_delay=0.1, jitter=Jitter.NONE)
    policy = RetryPolicy(config, name="s3", clock=FakeClock(autojump=True))
    app_log = logging.getLogger("backend.test")
    try:
        await policy.call(down)
    except ConnectionRefusedError:
        app_log.exception("upload failed", extra={"event": "upload_failed", "key": "covers/42"})

    records = lines(stream)
    gave_up = next(r for r in records if r.get("event") == "retry_gave_up")
    assert (gave_up["policy"], gave_up["reason"], gave_up["attempt"]) == (
        "s3",
        "attempts_exhausted",
        2,
    )
    failed = next(r for r in records if r.get("event") == "upload_failed")
    assert failed["level"] == "ERROR"
    assert failed["key"] == "covers/42"
    assert failed["exc_type"] == "ConnectionRefusedError"
    assert failed["exc_message"] == "[Errno 111] Connection refused"
    assert failed["exc_notes"] == ["s3: gave up after 2 attempt(s) in 0.100 s (attempts_exhausted)"]
    assert isinstance(failed["traceback"], str)
    assert failed["traceback"].startswith("Traceback (most recent call last):")


def test_an_exception_renders_as_type_one_line_message_and_traceback(
    log: logging.Logger, stream: io.StringIO
) -> None:
    try:
        raise QuotaExceeded("too many uploads\nfor user 7\n\ttoday")
    except QuotaExceeded:
        log.exception("upload refused")
    log.error("again, from an instance", exc_info=QuotaExceeded("once more"))
    log.error("no exception in flight", exc_info=True)

    text = stream.getvalue()
    assert text.count("\n") == 3  # the traceback's newlines are escaped inside the JSON string
    first, second, third = lines(stream)
    assert first["exc_type"] == f"{__name__}.QuotaExceeded"
    assert first["exc_message"] == "too many uploads for user 7 today"
    assert isinstance(first["traceback"], str)
    assert "raise QuotaExceeded(" in first["traceback"]
    assert "exc_notes" not in first
    assert second["exc_message"] == "once more"
    assert "exc_type" not in third
    assert "traceback" not in third


def test_stack_info_is_kept(log: logging.Logger, stream: io.StringIO) -> None:
    log.info("where am I", stack_info=True)
    (record,) = lines(stream)
    assert isinstance(record["stack"], str)
    assert "test_stack_info_is_kept" in record["stack"]


def test_configuring_twice_installs_one_handler_and_follows_the_new_stream(
    stream: io.StringIO,
) -> None:
    root = logging.getLogger()
    others = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
    first = configure_logging("INFO", io.StringIO())
    second = configure_logging("DEBUG", stream)
    assert second is first
    json_handlers = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
    assert json_handlers == [first]
    assert [h for h in root.handlers if h is not first] == others  # pytest's capture stays
    assert root.level == logging.DEBUG
    logging.getLogger("backend.test").debug("once")
    assert [r["message"] for r in lines(stream)] == ["once"]


def test_noisy_libraries_are_quietened(stream: io.StringIO) -> None:
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    configure_logging("DEBUG", stream)
    for name in ("botocore", "aiobotocore", "asyncio"):
        assert logging.getLogger(name).level == logging.WARNING
    logging.getLogger("botocore.endpoint").debug("Sending http request: ...")
    logging.getLogger("asyncio").debug("Using selector: EpollSelector")
    logging.getLogger("apscheduler.executors.default").info('Running job "check:api"')
    logging.getLogger("botocore.credentials").warning("Found credentials in environment")
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    assert [r["logger"] for r in lines(stream)] == [
        "botocore.credentials",
        "apscheduler.executors.default",
    ]


def test_an_unencodable_record_still_yields_a_json_line(
    log: logging.Logger, stream: io.StringIO
) -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    log.info("cyclic", extra={"loop": loop})
    (record,) = lines(stream)
    assert record["message"] == "cyclic"
    assert "loop" in record


def test_a_bad_level_is_refused_before_anything_is_installed() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD", io.StringIO())
    assert root.handlers == before
