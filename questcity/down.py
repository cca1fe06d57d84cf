"""``questcity down``: stop the ``questcity up`` stack of this directory, from any terminal.

While ``up`` runs it gets SIGTERM and stops its stack itself, in order. A stack whose ``up`` is
gone (and whose watchdog is gone too, or it would have stopped it) is stopped from its record,
in the same order, and the record deleted.
"""

from __future__ import annotations

import argparse
import signal

from questcity.embedded.process import wait_gone
from questcity.processes import STOP_TIMEOUT, remove_paths, send, stop_in_stages
from questcity.record import RECORD_PATH, StackRecord

UP_STOP_TIMEOUT = 4 * STOP_TIMEOUT
"""How long ``up`` has to stop its stack in order (each stage up to STOP_TIMEOUT) before we do."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    down = commands.add_parser(
        "down", help="stop the `questcity up` stack of this directory (from any terminal)"
    )
    down.set_defaults(handler=run_down)


def run_down(args: argparse.Namespace) -> int:
    record = StackRecord.load(RECORD_PATH)
    if record is None:
        print(f"questcity down: no stack is running here (no {RECORD_PATH})")
        return 0
    if record.up.alive:
        print(f"stopping questcity up (pid {record.up.pid}, started {record.started()})…")
        send(record.up, signal.SIGTERM)
        if wait_gone([record.up.pid], UP_STOP_TIMEOUT):
            print(f"questcity up did not stop within {UP_STOP_TIMEOUT:g} s; stopping the rest")
            send(record.up, signal.SIGKILL)
        record = StackRecord.load(RECORD_PATH)
        if record is None:  # `up` stopped everything and deleted its record
            print("stopped.")
            return 0
    stopped = stop_in_stages(record.processes, say=print)
    if record.watchdog is not None:
        stop_in_stages([record.watchdog])
    remove_paths(record.cleanup)
    record.delete()
    print("stopped." if stopped else "nothing was running; removed the stale record.")
    return 0
