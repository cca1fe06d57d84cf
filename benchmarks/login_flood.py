"""A real user's login throughput while others flood the same account with guesses.

The backend runs as ``questcity backend`` in a process of its own (SQLite by default, or a real
PostgreSQL with ``--database postgresql``). A user registers and logs in once from 127.0.0.1
(their known client; the answer also sets their device cookie, which they send from then on).
Then, in the same run, phases alternate:

- **quiet** (the baseline): the user logs in over and over (``--user-concurrency`` logins in
  flight), nothing else happens;
- **flood**: the same, while attackers send wrong passwords for the user's account at
  ``--rate`` guesses/s (open loop: a guess is sent on schedule whatever the answers), spread
  over ``--attackers`` client addresses 127.0.0.2, 127.0.0.3, ... (every address on one machine
  is loopback; binding the attackers' sockets to other source addresses is what makes the
  backend see other clients).

Target: the user's logins/s in a flood phase ≥ 90 % of those in the quiet phase just before it,
as the median over the rounds. The machine's other work moves both (on a shared machine, by far
more than the flood does); short phases that alternate put each flood next to its own baseline,
and the median keeps a round that another process happened to crowd out from deciding the
figure. Every round's ratio, the aggregate, and the CPU seconds the backend and this process
used in each phase are printed too.

    uv run python -m benchmarks.login_flood [--rate 300] [--seconds 3] [--rounds 10]
        [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._servers import (
    HOST,
    READY,
    LeanClient,
    ServerProcess,
    backend_argv,
    backend_env,
    load_average,
    new_port,
    stop_on_sigterm,
)

TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"
PASSWORD = "correct horse battery staple"
TARGET = 0.90


class BoundClient(LeanClient):
    """A :class:`LeanClient` whose connections leave from ``source`` (a local address)."""

    def __init__(self, host: str, port: int, *, source: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.source = source

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                return reader, writer
            self._discard(writer)
        reader, writer = await asyncio.open_connection(
            self.host, self.port, local_addr=(self.source, 0)
        )
        self._open.add(writer)
        return reader, writer


@dataclass
class Phase:
    label: str
    seconds: float
    user_latencies: list[float] = field(default_factory=list)
    user_statuses: Counter[int] = field(default_factory=Counter)
    attack_statuses: Counter[str] = field(default_factory=Counter)
    attack_sent: int = 0
    server_cpu: float = 0.0
    """CPU seconds the backend process used during the phase."""
    client_cpu: float = 0.0
    """CPU seconds this benchmark process (user and attackers) used during the phase."""

    @property
    def user_rate(self) -> float:
        return self.user_statuses[200] / self.seconds


async def user_logins(
    client: LeanClient, username: str, cookie: str, phase: Phase, until: float
) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        answer = await client.request(
            "POST",
            TOKEN,
            json_body={"username": username, "password": PASSWORD},
            headers={"Cookie": cookie},
        )
        phase.user_statuses[answer.status] += 1
        if answer.status == 200:
            phase.user_latencies.append(time.monotonic() - started)


async def flood(
    clients: list[BoundClient], username: str, rate: float, phase: Phase, until: float
) -> None:
    async def guess(client: BoundClient, n: int) -> None:
        try:
            answer = await client.request(
                "POST", TOKEN, json_body={"username": username, "password": f"guess {n}"}
            )
        except (OSError, TimeoutError) as error:
            phase.attack_statuses[type(error).__name__] += 1
        else:
            phase.attack_statuses[str(answer.status)] += 1

    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    n = 0
    while (due := start + n / rate) < until:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(guess(clients[n % len(clients)], n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    phase.attack_sent = n
    await asyncio.gather(*tasks)


async def run_phase(
    label: str,
    users: list[LeanClient],
    attackers: list[BoundClient] | None,
    username: str,
    cookie: str,
    *,
    seconds: float,
    rate: float,
    server_pid: int,
) -> Phase:
    phase = Phase(label, seconds)
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    until = time.monotonic() + seconds
    work = [user_logins(client, username, cookie, phase, until) for client in users]
    if attackers:
        work.append(flood(attackers, username, rate, phase, until))
    await asyncio.gather(*work)
    phase.server_cpu = cpu_seconds(server_pid) - server_before
    phase.client_cpu = time.process_time() - client_before
    return phase


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, server_pid: int, args: argparse.Namespace) -> list[Phase]:
    username = f"flooded-{uuid.uuid4().hex[:8]}"
    timeout = 30.0
    users = [LeanClient(HOST, port, timeout=timeout) for _ in range(args.user_concurrency)]
    attackers = [
        BoundClient(HOST, port, source=f"127.0.0.{2 + i}", timeout=timeout)
        for i in range(args.attackers)
    ]
    try:
        first = users[0]
        registered = await first.request(
            "POST", REGISTER, json_body={"username": username, "password": PASSWORD}
        )
        if registered.status != 201:
            raise RuntimeError(f"register: {registered.status} {registered.body[:300]!r}")
        login = await first.request(
            "POST", TOKEN, json_body={"username": username, "password": PASSWORD}
        )
        if login.status != 200 or "set-cookie" not in login.headers:
            raise RuntimeError(f"login: {login.status} {login.body[:300]!r}")
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        await run_phase(
            "warm-up",
            users,
            None,
            username,
            cookie,
            seconds=2.0,
            rate=args.rate,
            server_pid=server_pid,
        )
        phases: list[Phase] = []
        for round_number in range(1, args.rounds + 1):
            for label, flooding in (("quiet", None), ("flood", attackers)):
                phases.append(
                    await run_phase(
                        f"{label} {round_number}",
                        users,
                        flooding,
                        username,
                        cookie,
                        seconds=args.seconds,
                        rate=args.rate,
                        server_pid=server_pid,
                    )
                )
        return phases
    finally:
        for client in [*users, *attackers]:
            await client.close()


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[dict[str, object]]:
    """Settings for the backend's database: a file in ``workdir``, or a throwaway cluster."""
    if kind == "sqlite":
        yield {}
        return
    from tests.support import PostgresServer

    with PostgresServer() as postgres:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        postgres.create_database(name)
        yield {"database_url": postgres.url_for(database=name)}


def report(phases: list[Phase], args: argparse.Namespace, load: tuple[str, str]) -> str:
    quiet = [p for p in phases if p.label.startswith("quiet")]
    flooded = [p for p in phases if p.label.startswith("flood")]
    lines = [
        f"login_flood: {args.database}, user concurrency {args.user_concurrency}, "
        f"flood {args.rate:g} guesses/s from {args.attackers} addresses, "
        f"{args.seconds:g} s phases × {args.rounds} rounds; load average before {load[0]}, "
        f"after {load[1]}",
        "",
        "| phase | user logins/s | p50 ms | p99 ms | user statuses | guesses sent | "
        "guess answers | backend CPU s | client CPU s |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for p in phases:
        latencies = sorted(p.user_latencies) or [0.0]
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        statuses = ", ".join(f"{k} ×{v}" for k, v in sorted(p.user_statuses.items()))
        answers = ", ".join(f"{k} ×{v}" for k, v in p.attack_statuses.most_common()) or "—"
        lines.append(
            f"| {p.label} | {p.user_rate:.1f} | {statistics.median(latencies) * 1000:.1f} | "
            f"{p99 * 1000:.1f} | {statuses} | {p.attack_sent} | {answers} | "
            f"{p.server_cpu:.2f} | {p.client_cpu:.2f} |"
        )
    baseline = sum(p.user_statuses[200] for p in quiet) / sum(p.seconds for p in quiet)
    during = sum(p.user_statuses[200] for p in flooded) / sum(p.seconds for p in flooded)
    ratio = during / baseline if baseline else 0.0
    pairs = [
        f / q
        for q, f in zip((p.user_rate for p in quiet), (p.user_rate for p in flooded), strict=True)
        if q
    ]
    median = statistics.median(pairs) if pairs else 0.0
    verdict = "meets" if median >= TARGET else "MISSES"
    lines += [
        "",
        f"user logins/s, flood ÷ quiet, median of the {len(pairs)} rounds: {median:.0%}; "
        f"{verdict} the target (≥ {TARGET:.0%})",
        "per round: " + ", ".join(f"{r:.0%}" for r in pairs),
        f"all rounds together: quiet {baseline:.1f}/s (baseline), flood {during:.1f}/s → "
        f"{ratio:.0%}",
    ]
    logins_quiet = sum(p.user_statuses[200] for p in quiet)
    guesses = sum(p.attack_sent for p in flooded)
    if logins_quiet and guesses:
        per_login = sum(p.server_cpu for p in quiet) / logins_quiet
        flood_cpu = sum(p.server_cpu for p in flooded)
        per_guess = (flood_cpu - per_login * sum(p.user_statuses[200] for p in flooded)) / guesses
        hashed = sum(p.attack_statuses["401"] for p in flooded)
        lines.append(
            f"backend CPU: {per_login * 1000:.1f} ms a login (quiet phases), about "
            f"{per_guess * 1000:.2f} ms a guess (the flood phases' rest); {hashed} of "
            f"{guesses} guesses reached a password hash (401), the others were refused before it"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="guesses per second")
    parser.add_argument("--attackers", type=int, default=8, help="attacker source addresses")
    parser.add_argument("--user-concurrency", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=10, help="quiet/flood pairs")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--server-cpu",
        type=int,
        default=None,
        help="pin the backend to this CPU, and this benchmark (user and attackers) to the "
        "others: the attackers' own CPU then stays off the backend's core, as it would on "
        "another machine",
    )
    args = parser.parse_args()
    if not 1 <= args.attackers <= 250 or args.rate <= 0:
        parser.error("--attackers must be 1 to 250 and --rate above 0")
    load_before = load_average()
    with (
        stop_on_sigterm(),
        tempfile.TemporaryDirectory(prefix="questcity-bench-") as tmp,
        database(args.database, Path(tmp)) as db_settings,
    ):
        workdir = Path(tmp)
        port = new_port()
        env = backend_env(workdir, **db_settings)
        if args.server_cpu is not None:
            others = os.sched_getaffinity(0) - {args.server_cpu}
            if not others:
                parser.error("--server-cpu needs a machine with another CPU for the clients")
            os.sched_setaffinity(0, others)
        argv = backend_argv(port, cpu=args.server_cpu)
        with ServerProcess("backend", argv, port=port, workdir=workdir, env=env) as backend:
            backend.wait_until(READY)
            phases = asyncio.run(drive(port, backend.server_pid(), args))
    print(report(phases, args, (load_before, load_average())))


if __name__ == "__main__":
    main()
