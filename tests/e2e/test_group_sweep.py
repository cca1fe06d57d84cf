"""The straggler sweep: what a stopped service left in its process group dies, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from questcity.embedded.process import wait_gone
from questcity.processes import group_leaders, group_members, start_ticks, sweep_groups

# A group leader that starts a long-lived member and exits when told, as a service that forgot
# one of its children would.
_LEADER = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "print(child.pid, flush=True)\n"
    "input()\n"
)


def test_a_straggler_left_in_a_stopped_leaders_group_is_killed() -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", _LEADER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert leader.stdout is not None and leader.stdin is not None
    straggler = int(leader.stdout.readline())
    try:
        leaders = group_leaders([leader.pid])
        assert leaders == [(leader.pid, start_ticks(leader.pid))]
        leader.stdin.close()  # the leader exits; its child stays in the group
        leader.wait(timeout=30)

        assert group_members(leader.pid, leaders[0][1]) == [straggler]
        sweep_groups(leaders)
        assert wait_gone([straggler], 15.0) == []
    finally:
        if start_ticks(straggler) is not None:
            os.kill(straggler, signal.SIGKILL)
        leader.kill()
        leader.wait()
        leader.stdout.close()


def test_a_process_that_started_before_the_leader_is_not_its_straggler() -> None:
    """Once a group is empty its number is free; a process holding it then started before the
    recorded leader did, and the sweep leaves it alone (``killpg`` would not)."""
    own_group = os.getpgid(0)
    own_start = start_ticks(os.getpid())
    assert own_start is not None
    assert os.getpid() in group_members(own_group, own_start)
    assert os.getpid() not in group_members(own_group, own_start + 1)
