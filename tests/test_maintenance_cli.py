"""``questcity maintenance schedule|list|cancel`` end to end through ``main()`` against a real
store named by a temporary monitor.toml: the id alone on stdout; ``list`` shows upcoming, active
and cancelled windows; times need their offset; refusals exit 2 with what to do and write
nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.store import HistoryReader, Maintenance
from monitor.store.writer import HistoryWriter
from tests.test_incident_cli import Stack, _migrated, cli, stack

__all__ = ["_migrated", "stack"]  # the fixtures, shared with the incident CLI's tests

HOUR = 3600.0
MOSCOW = timezone(timedelta(hours=3))


def iso(at: float, zone: timezone = UTC) -> str:
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def windows(stack: Stack) -> list[Maintenance]:
    async def read(reader: HistoryReader, _writer: HistoryWriter) -> list[Maintenance]:
        return await reader.maintenances(since=0, include_cancelled=True)

    return stack.on_store(read)


def window(stack: Stack, window_id: int) -> Maintenance:
    async def read(reader: HistoryReader, _writer: HistoryWriter) -> Maintenance | None:
        return await reader.maintenance(window_id)

    found = stack.on_store(read)
    assert found is not None
    return found


def maintenance(
    stack: Stack, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    return cli(stack, capsys, *args, command="maintenance")


def scheduled(
    stack: Stack, capsys: pytest.CaptureFixture[str], starts: str, ends: str, *extra: str
) -> int:
    code, out, err = maintenance(
        stack,
        capsys,
        "schedule",
        "--title",
        "Database upgrade",
        "--components",
        "questcity-api/database",
        "--starts",
        starts,
        "--ends",
        ends,
        *extra,
    )
    assert (code, err) == (0, ""), err
    assert out.strip().isdigit() and out == out.strip() + "\n", "the id alone on stdout"
    return int(out)


def test_schedule_list_cancel(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    now = round(time.time())
    starts, ends = now + 2 * HOUR, now + 4 * HOUR
    window_id = scheduled(
        stack,
        capsys,
        iso(starts, MOSCOW),
        iso(ends),
        "--message",
        "Quests pause\x1b[2J for two hours.",
        "--by",
        "alice",
    )
    made = window(stack, window_id)
    assert (made.starts_at, made.ends_at) == (starts, ends)  # +03:00 and Z read alike
    assert (made.title, made.components, made.created_by) == (
        "Database upgrade",
        ("questcity-api/database",),
        "alice",
    )
    assert made.message == "Quests pause[2J for two hours."

    running = scheduled(stack, capsys, iso(now - HOUR), iso(now + HOUR))
    code, out, err = maintenance(stack, capsys, "list")
    assert code == 0
    listed = {int(line.split("  ")[0]): line.split("  ") for line in out.splitlines()}
    assert listed[window_id][1:2] == ["upcoming"]
    assert listed[window_id][3:5] == ["Database upgrade", "questcity-api/database"]
    assert listed[window_id][2].endswith("(2 h)")
    assert listed[running][1] == "active"
    assert err.startswith("questcity maintenance list: 1 active, 1 upcoming, 0 completed, 0 ")

    code, out, err = maintenance(stack, capsys, "cancel", str(window_id), "--by", "bob")
    assert (code, err) == (0, "")
    assert out.split("  ")[:2] == [str(window_id), "cancelled"]
    done = window(stack, window_id)
    assert done.cancelled_by == "bob" and done.cancelled_at is not None
    code, out, _err = maintenance(stack, capsys, "list")
    line = next(li for li in out.splitlines() if li.startswith(f"{window_id}  "))
    assert line.split("  ")[1] == "cancelled" and line.endswith("by bob")
    # Cancelling it again changes nothing.
    assert maintenance(stack, capsys, "cancel", str(window_id), "--by", "carol")[0] == 0
    assert window(stack, window_id).cancelled_by == "bob"


@pytest.mark.parametrize(
    ("starts", "ends", "says"),
    [
        (2 * HOUR, None, "has no offset: whose"),
        (2 * HOUR, HOUR, "--ends comes after --starts"),
        (-3 * HOUR, -HOUR, "ended already"),
        (HOUR, HOUR + 8 * 24 * HOUR, "at most 7 days (longer is not maintenance"),
        (91 * 24 * HOUR, 92 * 24 * HOUR, "at most 90 days ahead"),
    ],
)
def test_schedule_refusals_exit_2_and_write_nothing(
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
    starts: float,
    ends: float | None,
    says: str,
) -> None:
    now = time.time()
    naive = datetime.fromtimestamp(now + starts).strftime("%Y-%m-%dT%H:%M")
    code, out, err = maintenance(
        stack,
        capsys,
        "schedule",
        "--title",
        "Upgrade",
        "--components",
        "questcity-api",
        "--starts",
        naive if ends is None else iso(now + starts),
        "--ends",
        iso(now + (ends if ends is not None else 3 * HOUR)),
    )
    assert (code, out) == (2, "")
    assert err.startswith("questcity maintenance schedule: ") and says in err, err
    if ends is None:
        assert "Say +03:00 or Z" in err
    assert windows(stack) == []


def test_an_unknown_component_is_named_with_the_known_ones(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    code, out, err = maintenance(
        stack,
        capsys,
        "schedule",
        "--title",
        "Upgrade",
        "--components",
        "questcity-api/db",
        "--starts",
        iso(now + HOUR),
        "--ends",
        iso(now + 2 * HOUR),
    )
    assert (code, out) == (2, "")
    assert "no component 'questcity-api/db' in the store." in err
    assert "questcity-api, questcity-api/database, questcity-api/s3" in err
    assert windows(stack) == []


def test_cancel_refusals(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = maintenance(stack, capsys, "cancel", "7")
    assert (code, out) == (2, "")
    assert err == (
        "questcity maintenance cancel: no maintenance window 7; "
        "`questcity maintenance list` shows them\n"
    )
    now = time.time()

    async def ended(_reader: HistoryReader, writer: HistoryWriter) -> int:
        return await writer.schedule_maintenance(
            "Old", ["questcity-api"], now - 3 * HOUR, now - HOUR, None, "alice", now - 4 * HOUR
        )

    old = stack.on_store(ended)
    code, out, err = maintenance(stack, capsys, "cancel", str(old))
    assert (code, out) == (2, "")
    assert "there is nothing left to cancel" in err
    assert window(stack, old).cancelled_at is None
