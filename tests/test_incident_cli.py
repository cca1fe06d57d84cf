"""``questcity incident open|update|list|postmortem`` end to end through ``main()`` against a
real store (a SQLite file copied from one migrated per session) named by a temporary
monitor.toml: the id alone on stdout, usable by ``update``; ``list`` shows it; ``resolved``
closes it; an automatic incident updated by a person is taken over; refusals exit 2 with what
to do and write nothing; store trouble exits 1."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from monitor.store import (
    Component,
    HistoryReader,
    Incident,
    IncidentComponent,
    IncidentOrigin,
    IncidentState,
    Status,
    open_engine,
)
from monitor.store.writer import HistoryWriter
from questcity.cli import main
from tests.support.store_template import migrate_store

T = TypeVar("T")
CATALOGUE = [
    Component("questcity-api", "", "QuestCity API", "Core", 0),
    Component("questcity-api", "database", "Database", "Core", 1, critical=True),
    Component("questcity-api", "s3", "Photos and avatars", "Core", 2),
]


class Stack:
    """A store with the catalogue, named by a monitor.toml."""

    def __init__(self, url: str, config: Path) -> None:
        self.url = url
        self.config = config

    def on_store(self, action: Callable[[HistoryReader, HistoryWriter], Awaitable[T]]) -> T:
        async def run() -> T:
            engine = open_engine(self.url)
            try:
                return await action(HistoryReader(engine), HistoryWriter(engine))
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def incident(self, incident_id: int) -> Incident:
        async def read(reader: HistoryReader, _writer: HistoryWriter) -> Incident | None:
            return await reader.incident(incident_id)

        found = self.on_store(read)
        assert found is not None
        return found

    def incidents(self) -> list[Incident]:
        async def read(reader: HistoryReader, _writer: HistoryWriter) -> list[Incident]:
            return await reader.incidents(limit=100)

        return self.on_store(read)


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-store") / "monitor.db"
    migrate_store(f"sqlite:///{path}")
    return path


@pytest.fixture
def stack(tmp_path: Path, _migrated: Path) -> Stack:
    """A copy of the migrated store with the catalogue the monitor would have written."""
    path = tmp_path / "monitor.db"
    shutil.copyfile(_migrated, path)
    config = tmp_path / "monitor.toml"
    url = f"sqlite:///{path}"
    config.write_text(f'[storage]\nurl = "{url}"\n', encoding="utf-8")
    made = Stack(url, config)

    async def seed(_reader: HistoryReader, writer: HistoryWriter) -> None:
        await writer.sync_components(CATALOGUE)

    made.on_store(seed)
    return made


def cli(
    stack: Stack, capsys: pytest.CaptureFixture[str], *args: str, command: str = "incident"
) -> tuple[int, str, str]:
    code = main([command, *args, "--config", str(stack.config)])
    out, err = capsys.readouterr()
    return code, out, err


def opened(stack: Stack, capsys: pytest.CaptureFixture[str], *extra: str) -> int:
    code, out, err = cli(
        stack,
        capsys,
        "open",
        "--title",
        "Photos fail to upload",
        "--components",
        "questcity-api/s3,questcity-api",
        *extra,
    )
    assert (code, err) == (0, ""), err
    assert out.strip().isdigit() and out == out.strip() + "\n", "the id alone on stdout"
    return int(out)


# -- the life of a written incident ---------------------------------------------------------------


def test_open_update_list_resolve(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time()
    incident_id = opened(stack, capsys, "--impact", "major", "--by", "alice")
    made = stack.incident(incident_id)
    assert (made.origin, made.state, made.phase) == (
        IncidentOrigin.WRITTEN,
        IncidentState.OPEN,
        "investigating",
    )
    assert (made.title, made.written_by) == ("Photos fail to upload", "alice")
    assert [(c.target, c.service, c.status) for c in made.components] == [
        ("questcity-api", "s3", Status.UNHEALTHY),
        ("questcity-api", "", Status.UNHEALTHY),
    ]
    (first,) = [e for e in made.events if e.kind == "update"]
    assert (first.text, first.phase, first.public) == (
        "We are investigating this issue.",
        "investigating",
        True,
    )
    assert before <= made.opened_at <= time.time()

    code, out, err = cli(
        stack,
        capsys,
        "update",
        str(incident_id),
        "--status",
        "identified",
        "--message",
        "A full disk.\nCleaning up.",
        "--by",
        "bob",
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"{incident_id}  open/identified  written  major  ")

    code, out, err = cli(stack, capsys, "list")
    assert code == 0
    (line,) = out.splitlines()
    fields = line.split("  ")
    assert fields[:6] == [
        str(incident_id),
        "open/identified",
        "written",
        "major",
        "Photos fail to upload",
        "questcity-api/s3,questcity-api",
    ]
    assert fields[6].startswith("opened 20") and fields[7].endswith("so far")
    assert err == "questcity incident list: 1 open, 0 resolved in the last 7 days\n"

    code, out, err = cli(stack, capsys, "update", str(incident_id), "--status", "resolved")
    assert (code, err) == (0, "")
    done = stack.incident(incident_id)
    assert (done.state, done.phase) == (IncidentState.RESOLVED, "resolved")
    assert done.resolved_at is not None
    updates = [(e.phase, e.text, e.actor) for e in done.events if e.kind == "update"]
    assert updates[1:] == [
        ("identified", "A full disk.\nCleaning up.", "bob"),
        ("resolved", "This incident has been resolved.", getpass.getuser()),
    ]
    code, out, err = cli(stack, capsys, "list")
    assert out.split("  ")[1] == "resolved/resolved"
    assert err == "questcity incident list: 0 open, 1 resolved in the last 7 days\n"


def test_a_minor_impact_and_a_message_without_its_control_characters(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "ops\x1b[31m")
    incident_id = opened(stack, capsys, "--message", "Uploads\x1b[2J fail\u202e.\r\nMore soon.")
    made = stack.incident(incident_id)
    assert made.written_by == "ops [31m"  # --by defaults to the login name, one clean line
    assert {c.status for c in made.components} == {Status.DEGRADED}  # minor by default
    (first,) = [e for e in made.events if e.kind == "update"]
    assert first.text == "Uploads[2J fail.\nMore soon."


def test_updating_an_automatic_incident_takes_it_over(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    async def automatic(_reader: HistoryReader, writer: HistoryWriter) -> int:
        return await writer.open_incident(
            "questcity-api",
            "s3",
            Status.UNHEALTHY,
            time.time() - 600,
            "Partial outage: Photos and avatars",
            components=[IncidentComponent("questcity-api", "s3", Status.UNHEALTHY)],
        )

    incident_id = stack.on_store(automatic)
    code, out, _err = cli(stack, capsys, "list")
    assert out.split("  ")[1:3] == ["open", "auto"]
    code, out, err = cli(
        stack, capsys, "update", str(incident_id), "--status", "identified", "--by", "carol"
    )
    assert (code, err) == (0, "")
    taken = stack.incident(incident_id)
    assert (taken.written_by, taken.phase, taken.origin) == (
        "carol",
        "identified",
        IncidentOrigin.AUTO,
    )
    assert [e.kind for e in taken.events].count("takeover") == 1
    code, out, _err = cli(stack, capsys, "list")
    assert out.split("  ")[1:3] == ["open/identified", "taken over"]


def test_a_postmortem_from_text_or_a_file(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    incident_id = opened(stack, capsys)
    code, out, err = cli(stack, capsys, "postmortem", str(incident_id), "--text", "A disk.")
    assert (code, out) == (2, "")
    assert "still open: resolve it first" in err
    assert stack.incident(incident_id).postmortem is None

    assert cli(stack, capsys, "update", str(incident_id), "--status", "resolved")[0] == 0
    document = tmp_path / "postmortem.md"
    document.write_text("# What happened\n\nThe disk filled up.\n", encoding="utf-8")
    code, out, err = cli(stack, capsys, "postmortem", str(incident_id), "--file", str(document))
    assert (code, err) == (0, "")
    assert out == f"Postmortem of incident {incident_id} published (36 characters).\n"
    written = stack.incident(incident_id)
    assert written.postmortem == "# What happened\n\nThe disk filled up."
    assert written.postmortem_at is not None
    assert cli(stack, capsys, "list")[1].rstrip().endswith("postmortem")

    document.write_bytes(b"\xff\xfe not utf-8")
    code, _out, err = cli(stack, capsys, "postmortem", str(incident_id), "--file", str(document))
    assert code == 2 and "not UTF-8 text; save it as UTF-8" in err
    code, _out, err = cli(
        stack, capsys, "postmortem", str(incident_id), "--file", str(tmp_path / "none.md")
    )
    assert code == 2 and "cannot read it" in err


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--title", "Down", "--components", "questcity-api/s4"],
            "no component 'questcity-api/s4' in the store. Did you mean questcity-api/s3? "
            "Its components: questcity-api, questcity-api/database, questcity-api/s3",
        ),
        (["--title", "Down", "--components", " , "], "name the components it concerns"),
        (["--title", "Two\nlines", "--components", "questcity-api"], "no control codes"),
        (["--title", "x" * 201, "--components", "questcity-api"], "keep it to 200"),
        (
            ["--title", "Down", "--components", "questcity-api", "--impact", "huge"],
            "'huge' is not an impact: say minor, major, critical",
        ),
        (
            ["--title", "Down", "--components", "questcity-api", "--message", "m" * 5001],
            "keep it to 5000",
        ),
        (["--title", "Down", "--components", "questcity-api", "--by", "\x1b\x00"], "--by NAME"),
    ],
)
def test_open_refusals_exit_2_and_write_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    code, out, err = cli(stack, capsys, "open", *args)
    assert (code, out) == (2, "")
    assert err.startswith("questcity incident open: ")
    assert says in err
    assert stack.incidents() == []


def test_update_refusals(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(stack, capsys, "update", "99", "--status", "identified")
    assert (code, out) == (2, "")
    assert (
        err == "questcity incident update: no incident 99; `questcity incident list` shows them\n"
    )
    incident_id = opened(stack, capsys)
    code, out, err = cli(stack, capsys, "update", str(incident_id), "--status", "fixed")
    assert (code, out) == (2, "")
    assert "'fixed' is not an incident status: say investigating, identified, monitoring" in err
    assert [e.kind for e in stack.incident(incident_id).events].count("update") == 1
    with pytest.raises(SystemExit) as usage:
        main(["incident", "update", "-3", "--status", "resolved"])
    assert usage.value.code == 2


def test_store_trouble_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/none.db"\n', encoding="utf-8")
    code = main(["incident", "open", "--title", "T", "--components", "a", "--config", str(config)])
    _out, err = capsys.readouterr()
    assert code == 1 and "no store at" in err and "check --config" in err
    assert not (tmp_path / "none.db").exists()
    assert main(["incident", "list", "--config", str(config)]) == 0
    assert "no incidents" in capsys.readouterr().err
    code = main(["incident", "list", "--config", str(tmp_path / "absent.toml")])
    assert code == 1 and "not found" in capsys.readouterr().err
