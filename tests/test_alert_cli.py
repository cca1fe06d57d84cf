"""``questcity alert list|ack|silence`` against a real store (a SQLite file; one PostgreSQL
case): what it prints, what it writes (the ack, the silence, each on the open incident's
timeline as the named engineer), and how bad input is refused (exit 1 not found / not firing,
exit 2 bad usage), with what to do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from monitor.store import (
    Alert,
    Component,
    HistoryReader,
    Incident,
    IncidentComponent,
    Silence,
    Status,
    create_schema,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from questcity.cli import main
from tests.support import PostgresServer

T = TypeVar("T")
CATALOGUE = [
    Component("questcity-api", "", "QuestCity API", "Core", 0),
    Component("questcity-api", "database", "Database", "Core", 1, critical=True),
    Component("questcity-api", "s3", "Photos and avatars", "Core", 2),
]


class Stack:
    """A store named by a monitor.toml, and its alerts and incident as set up."""

    def __init__(self, url: str, config: Path) -> None:
        self.url = url
        self.config = config
        self.s3_alert = 0
        self.db_alert = 0
        self.old_alert = 0
        self.incident = 0

    def on_store(self, action: Callable[[HistoryReader, HistoryWriter], Awaitable[T]]) -> T:
        async def run() -> T:
            engine = open_engine(self.url)
            try:
                return await action(HistoryReader(engine), HistoryWriter(engine))
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def alert(self, alert_id: int) -> Alert:
        async def read(reader: HistoryReader, _writer: HistoryWriter) -> Alert | None:
            return await reader.alert(alert_id)

        found = self.on_store(read)
        assert found is not None
        return found

    def timeline(self) -> Incident:
        async def read(reader: HistoryReader, _writer: HistoryWriter) -> Incident | None:
            return await reader.incident(self.incident)

        found = self.on_store(read)
        assert found is not None
        return found

    def silences(self) -> list[Silence]:
        async def read(reader: HistoryReader, _writer: HistoryWriter) -> list[Silence]:
            return await reader.silences(at=time.time())

        return self.on_store(read)


def set_up(url: str, tmp_path: Path) -> Stack:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n', encoding="utf-8")
    stack = Stack(url, config)
    now = time.time()

    async def seed(_reader: HistoryReader, writer: HistoryWriter) -> None:
        await create_schema(writer.engine)
        await writer.sync_components(CATALOGUE)
        stack.old_alert = await writer.fire_alert(
            "breaker_open", "questcity-api", "database", "breaker open", now - 7200
        )
        await writer.resolve_alert(stack.old_alert, now - 3600)
        stack.s3_alert = await writer.fire_alert(
            "s3_failure_rate", "questcity-api", "s3", "100 % of S3 operations failing", now - 600
        )
        stack.db_alert = await writer.fire_alert(
            "service_down", "questcity-api", "database", "Database down", now - 300
        )
        stack.incident = await writer.open_incident(
            "questcity-api",
            "s3",
            Status.UNHEALTHY,
            now - 590,
            "Partial outage: Photos and avatars",
            components=[
                IncidentComponent("questcity-api", "s3", Status.UNHEALTHY),
                IncidentComponent("questcity-api", "", Status.DEGRADED),
            ],
        )

    stack.on_store(seed)
    return stack


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return set_up(f"sqlite:///{tmp_path}/monitor.db", tmp_path)


def alert(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["alert", *args, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


# -- list -------------------------------------------------------------------------------------


def test_list_shows_each_firing_alert_on_one_line(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = alert(stack.config, capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split("  ")[:4] for line in lines] == [
        [str(stack.db_alert), "FIRING", "questcity-api/database", "service_down"],
        [str(stack.s3_alert), "FIRING", "questcity-api/s3", "s3_failure_rate"],
    ]
    assert lines[1].split("  ")[5:] == [
        "not acked",
        "not silenced",
        "100 % of S3 operations failing",
    ]
    assert lines[1].split("  ")[4].startswith("since 20")
    assert err == "questcity alert list: 2 firing (0 acknowledged, 0 silenced)\n"

    code, out, _err = alert(stack.config, capsys, "list", "--all")
    assert code == 0
    resolved = out.splitlines()[2].split("  ")
    assert resolved[:4] == [
        str(stack.old_alert),
        "RESOLVED",
        "questcity-api/database",
        "breaker_open",
    ]
    assert resolved[5].startswith("resolved at 20")


def test_list_on_a_store_not_made_yet_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/none.db"\n', encoding="utf-8")
    code, out, err = alert(config, capsys, "list")
    assert (code, out) == (0, "")
    assert "no store at" in err and "nothing has fired" in err
    assert not (tmp_path / "none.db").exists(), "listing makes no store"


# -- ack --------------------------------------------------------------------------------------


def test_ack_writes_who_and_when_and_the_incident_timeline(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    before = time.time()
    code, out, _err = alert(stack.config, capsys, "ack", str(stack.s3_alert), "--by", "alice")
    assert code == 0
    assert f"Alert #{stack.s3_alert} (s3_failure_rate on questcity-api/s3) acknowledged" in out
    assert f"Logged on incident #{stack.incident}." in out
    acked = stack.alert(stack.s3_alert)
    assert acked.acked_by == "alice"
    assert acked.acked_at is not None and before <= acked.acked_at <= time.time()
    (event,) = [e for e in stack.timeline().events if e.kind == "ack"]
    assert (event.actor, event.public) == ("alice", False)
    assert "acknowledged by alice" in event.text

    # A second ack keeps the first's who and when, and writes nothing more.
    code, out, _err = alert(stack.config, capsys, "ack", str(stack.s3_alert), "--by", "bob")
    assert code == 0
    assert "already acknowledged by alice" in out
    assert stack.alert(stack.s3_alert).acked_by == "alice"
    assert len([e for e in stack.timeline().events if e.kind == "ack"]) == 1

    code, out, err = alert(stack.config, capsys, "list")
    s3_line = next(line for line in out.splitlines() if "questcity-api/s3" in line)
    assert "acked by alice at 20" in s3_line
    assert "(1 acknowledged, 0 silenced)" in err


def test_ack_of_an_unknown_or_resolved_alert_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = alert(stack.config, capsys, "ack", "9999", "--by", "alice")
    assert code == 1
    assert "there is no alert #9999 (questcity alert list shows them)" in err
    code, _out, err = alert(stack.config, capsys, "ack", str(stack.old_alert), "--by", "alice")
    assert code == 1
    assert "is resolved already: nothing to acknowledge" in err
    assert stack.alert(stack.old_alert).acked_by is None


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ack", "1", "--by", "al\x1b[31mice"], "--by: your name, 1 to 100 printable characters"),
        (["ack", "1", "--by", "   "], "--by: your name"),
        (["ack", "1", "--by", "x" * 101], "--by: your name"),
    ],
)
def test_ack_refuses_a_bad_name_with_exit_2(
    stack: Stack, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    code, out, err = alert(stack.config, capsys, *args)
    assert (code, out) == (2, "")
    assert said in err
    assert stack.alert(stack.s3_alert).acked_by is None


@pytest.mark.parametrize(
    "args", [["ack", "abc", "--by", "alice"], ["ack", "0", "--by", "alice"], ["ack", "1"]]
)
def test_ack_usage_errors_exit_2(
    stack: Stack, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["alert", *args, "--config", str(stack.config)])
    assert stopped.value.code == 2


# -- silence ----------------------------------------------------------------------------------


def test_silence_writes_the_silence_and_the_incident_timeline(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    before = time.time()
    code, out, _err = alert(
        stack.config,
        capsys,
        "silence",
        "questcity-api/s3",
        "--for",
        "2h",
        "--by",
        "alice",
        "--reason",
        "bucket migration",
    )
    assert code == 0
    assert "Alerts of questcity-api/s3 silenced for 2h" in out
    assert f"Logged on incident #{stack.incident}." in out
    (silence,) = stack.silences()
    assert (silence.component, silence.created_by, silence.reason) == (
        "questcity-api/s3",
        "alice",
        "bucket migration",
    )
    assert before <= silence.starts_at <= time.time()
    assert silence.ends_at - silence.starts_at == pytest.approx(7200)
    (event,) = [e for e in stack.timeline().events if e.kind == "silence"]
    assert (event.actor, event.public) == ("alice", False)
    assert event.text == "Alerts of questcity-api/s3 silenced for 2h by alice: bucket migration"

    code, out, err = alert(stack.config, capsys, "list")
    s3_line = next(line for line in out.splitlines() if "questcity-api/s3" in line)
    db_line = next(line for line in out.splitlines() if "questcity-api/database" in line)
    assert "silenced until 20" in s3_line and "not silenced" in db_line
    assert "(0 acknowledged, 1 silenced)" in err


def test_a_target_key_silences_its_services(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, _err = alert(
        stack.config, capsys, "silence", "questcity-api", "--for", "90s", "--by", "bob"
    )
    assert code == 0
    _code, _out, err = alert(stack.config, capsys, "list")
    assert "(0 acknowledged, 2 silenced)" in err


@pytest.mark.parametrize("key", ["@monitor", "@monitor/questcity-api"])
def test_the_monitor_s_own_keys_can_be_silenced(
    stack: Stack, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """Not in the catalogue: the monitor's own alerts (monitor.self_alerts) are keyed there."""
    code, out, _err = alert(stack.config, capsys, "silence", key, "--for", "2h", "--by", "bob")
    assert code == 0
    assert f"Alerts of {key} silenced for 2h" in out
    assert [s.component for s in stack.silences()] == [key]


def test_silence_of_an_unknown_component_lists_the_keys_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = alert(
        stack.config, capsys, "silence", "questcity-api/s4", "--for", "2h", "--by", "alice"
    )
    assert (code, out) == (1, "")
    assert "no component questcity-api/s4 in the store; did you mean questcity-api/s3?" in err
    assert "Its components: questcity-api, questcity-api/database, questcity-api/s3" in err
    assert "questcity alert list` shows the keys" in err
    assert stack.silences() == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["questcity-api/s3", "--for", "8d"], "a silence lasts at most 7d"),
        (["questcity-api/s3", "--for", "30"], "is not a duration"),
        (["questcity-api/s3", "--for", "10s"], "a silence lasts at least 1m"),
        (["questcity api", "--for", "2h"], "is not a component key: TARGET or TARGET/SERVICE"),
        (["questcity-api/s3", "--for", "2h", "--reason", "a\nb"], "--reason: at most 200"),
        (["questcity-api/s3", "--for", "2h", "--reason", "r" * 201], "--reason: at most 200"),
    ],
)
def test_silence_refuses_bad_input_with_exit_2(
    stack: Stack, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    code, out, err = alert(stack.config, capsys, "silence", *args, "--by", "alice")
    assert (code, out) == (2, "")
    assert said in err
    assert stack.silences() == []


def test_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = alert(tmp_path / "missing.toml", capsys, "list")
    assert code == 2
    assert "not found (give the monitor's config with --config)" in err


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_stack(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Stack]:
    name = f"alerts_{uuid.uuid4().hex[:16]}"
    postgres_server.create_database(name)
    url = postgres_server.url_for(database=name).replace(
        "postgresql+asyncpg://", "postgresql://", 1
    )
    try:
        yield set_up(url, tmp_path)
    finally:
        postgres_server.drop_database(name)


def test_list_ack_and_silence_on_postgresql(
    pg_stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, _err = alert(
        pg_stack.config, capsys, "ack", str(pg_stack.s3_alert), "--by", "carol"
    )
    assert code == 0
    code, _out, _err = alert(
        pg_stack.config, capsys, "silence", "questcity-api/s3", "--for", "15m", "--by", "carol"
    )
    assert code == 0
    code, out, err = alert(pg_stack.config, capsys, "list")
    assert code == 0
    assert "(1 acknowledged, 1 silenced)" in err
    assert "acked by carol at 20" in out
    kinds = sorted(e.kind for e in pg_stack.timeline().events if e.actor == "carol")
    assert kinds == ["ack", "silence"]


def test_an_ack_without_an_open_incident_says_there_is_none_to_log_it_on(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = alert(stack.config, capsys, "ack", str(stack.db_alert), "--by", "dave")
    assert code == 0
    assert "questcity-api/database has no open incident to log it on." in out
    assert stack.alert(stack.db_alert).acked_by == "dave"
    assert [e for e in stack.timeline().events if e.kind == "ack"] == []
