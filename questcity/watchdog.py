"""``python -m questcity.watchdog RECORD``: stops what ``questcity up`` started once ``up`` is gone.

``up`` starts it before anything else, in a session of its own (a terminal's hang-up never reaches
it), with the read end of a pipe as its standard input; only ``up`` holds the write end. However
``up`` ends (Ctrl-C, SIGHUP, SIGTERM, SIGKILL, a crash), the kernel closes that end and the
watchdog reads end-of-file. It then stops every process the record still lists, in the record's
order (watchers first; PostgreSQL with a fast shutdown), deletes their throwaway directories and
the record, and exits. After an orderly stop ``up`` has done all that itself and the watchdog finds
nothing left.

A parent-death signal (``prctl(PR_SET_PDEATHSIG)``) would not do: it stops everything at once, not
in order, fires when the *thread* that started a child ends, and is lost when a child changes its
user (PostgreSQL's server, run as ``postgres`` when ``up`` runs as root).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from questcity.processes import remove_paths, stop_in_stages
from questcity.record import StackRecord


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} watchdog: {text}", flush=True)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    record_path = Path(argv[0])
    while os.read(sys.stdin.fileno(), 4096):  # until `up` is gone
        pass
    record = StackRecord.load(record_path)
    if record is None:
        return 0
    if record.watchdog is not None and record.watchdog.pid != os.getpid():
        return 0  # a newer stack's record: not ours to act on
    if record.up.alive:  # `up` closed the pipe but runs on: it is stopping the stack itself
        return 0
    say("questcity up is gone; stopping what it started")
    stopped = stop_in_stages(record.processes, say=say)
    remove_paths(record.cleanup)
    record.delete()
    say(f"stopped {len(stopped)} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
