"""Time from a fault to the first page, and from recovery to the resolved notice (issue #14).

    uv run python -m benchmarks.time_to_page [--runs 3] [--modes db-down,s3-down,...] [--json F]
    uv run python -m benchmarks.time_to_page --fast      # 1 s interval, 3 s hold-down, 1 run

The stack of ``tests.support.signals_stack`` (one backend replica; PostgreSQL and S3 behind
fault proxies, a proxy before the API; the monitor; the status page) with ``up``'s
``monitor.toml`` as shipped — interval 2 s (``questcity up``'s health interval),
``[incidents] open_after = 2``, the default alert rules (hold-down 30 s) — and an Apprise notifier
paging a local HTTP receiver (``json://``) and a local SMTP server (``mailto://``).

Fault modes, as the drill's phases (``tests/e2e/test_signals_drill.py``):

- ``db-down``: the database's proxy refuses connections (the critical service);
- ``s3-down``: S3's proxy refuses connections (not critical: paged by its failure-rate rules);
- ``both``: both at once (two causes);
- ``slow``: the API's proxy delays every chunk by one interval (the probe, 0.75 intervals, gives
  up: the target is unreachable);
- ``blackhole``: the database's proxy accepts connections and never answers.

A run: wait until nothing fires and no incident is open; fault; time to the first firing notice
for the mode's critical component at the JSON receiver (``page``; the database, or the target for
``slow``; any component for ``s3-down``), at the mailbox, the first notice of any rule, and each
rule's first notice; then heal the proxy and reset the faulted
breakers as the on-call engineer does (the README's drill; without it a breaker's own recovery,
30 s, would be measured instead), and time from that moment (``recovery``) to the last resolved
notice at both receivers. Modes are interleaved run by run, on one stack, so the machine's load
falls on all alike.

Targets (issue #14): page ≤ ``open_after × interval + 5 s`` for a critical service (database,
the target itself), resolved ≤ ``hold_down + 2 × interval``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks._servers import load_average, stop_on_sigterm
from monitor.config import load_config
from monitor.store import AlertState, HistoryReader, IncidentState, open_engine
from monitor.store.errors import StoreNotInitialised
from questcity.local_stack import LocalStack
from tests.support import PostgresServer, S3Server
from tests.support.receivers import Arrival, JsonReceiver, SmtpReceiver
from tests.support.signals_stack import TARGET, Settings, SignalsStack, signals_stack

SHIPPED_INTERVAL: float = LocalStack.health_interval
"""``questcity up``'s interval (its ``monitor.toml`` and the backend's health checks)."""
PAGE_SLACK = 5.0
"""The issue's allowance over ``open_after × interval``."""
WAIT = 120.0
"""The longest a run waits for a page or a resolved notice before it says "none"."""


DATABASE = f"{TARGET}/database"


def _both(stack: SignalsStack) -> None:
    stack.db.refuse()
    stack.s3.refuse()


@dataclass(frozen=True)
class Mode:
    name: str
    fault: Callable[[SignalsStack], None]
    reset: tuple[str, ...]
    critical: str | None
    """The component whose page the issue's target applies to (a critical service or the target
    itself); None: no target (S3 is not critical)."""


MODES = {
    "db-down": Mode("db-down", lambda s: s.db.refuse(), ("database",), DATABASE),
    "s3-down": Mode("s3-down", lambda s: s.s3.refuse(), ("s3",), None),
    "both": Mode("both", _both, ("database", "s3"), DATABASE),
    "slow": Mode("slow", lambda s: s.apis[0].slow(s.settings.interval), (), TARGET),
    "blackhole": Mode("blackhole", lambda s: s.db.blackhole(), ("database",), DATABASE),
}


@dataclass
class Run:
    mode: str
    page: float | None = None
    """The first notice of any rule at the JSON receiver."""
    critical_page: float | None = None
    """The first notice for the mode's critical component (what the issue's target is about)."""
    mail_page: float | None = None
    """The same at the mailbox."""
    resolved: float | None = None
    rules: dict[str, float] = field(default_factory=dict)
    """Each (component key, rule)'s first firing notice, seconds after the fault."""
    notices: int = 0


async def all_clear(reader: HistoryReader) -> bool:
    try:
        if not await reader.components():  # the monitor has not written its first check yet
            return False
        alerts = await reader.alerts(active_only=True)
        return not [a for a in alerts if a.state is AlertState.FIRING] and not (
            await reader.incidents(state=IncidentState.OPEN)
        )
    except StoreNotInitialised:  # the monitor is still creating it
        return False


async def wait_for(check: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def one_run(
    mode: Mode,
    stack: SignalsStack,
    hook: JsonReceiver,
    mail: SmtpReceiver,
    reader: HistoryReader,
    http: httpx.AsyncClient,
) -> Run:
    deadline = time.monotonic() + 180
    while not await all_clear(reader):
        assert time.monotonic() < deadline, "the stack did not come clear before a run"
        await asyncio.sleep(0.2)
    await asyncio.sleep(stack.settings.interval)  # a clean check first
    run = Run(mode.name)
    json_before, mail_before = len(hook.arrivals), len(mail.arrivals)
    faulted = time.time()
    mode.fault(stack)
    watched = mode.critical

    def paged(arrivals: list[Arrival], before: int) -> Arrival | None:
        return next(
            (
                a
                for a in arrivals[before:]
                if a.state == "FIRING" and (watched is None or a.component == watched)
            ),
            None,
        )

    if await wait_for(lambda: paged(hook.arrivals, json_before) is not None, WAIT):
        run.page = hook.arrivals[json_before].at - faulted
        run.critical_page = _at(paged(hook.arrivals, json_before)) - faulted
    if await wait_for(lambda: paged(mail.arrivals, mail_before) is not None, 30.0):
        run.mail_page = _at(paged(mail.arrivals, mail_before)) - faulted
    await asyncio.sleep(2 * stack.settings.interval)  # let a second cause or rule page too
    stack.heal_all()
    admin = {"Authorization": f"Bearer {stack.env['QUESTCITY_ADMIN_TOKEN']}"}
    for service in mode.reset:
        for port in stack.backend_ports:
            answer = await http.post(
                f"http://127.0.0.1:{port}/api/v1/health/services/{service}/reset", headers=admin
            )
            assert answer.status_code == 200, answer.text
    recovered = time.time()

    def settled() -> bool:
        for arrivals, before in ((hook.arrivals, json_before), (mail.arrivals, mail_before)):
            new = arrivals[before:]
            fired = {(a.component, a.rule) for a in new if a.state == "FIRING"}
            done = {(a.component, a.rule) for a in new if a.state == "RESOLVED"}
            if not fired or not fired <= done:
                return False
        return True

    if await wait_for(settled, WAIT):
        resolved = [a.at for a in hook.arrivals[json_before:] if a.state == "RESOLVED"]
        run.resolved = max(resolved) - recovered
    for arrival in hook.arrivals[json_before:]:
        if arrival.state == "FIRING":
            run.rules.setdefault(f"{arrival.component} {arrival.rule}", arrival.at - faulted)
    run.notices = len(hook.arrivals) - json_before
    return run


def _at(arrival: Arrival | None) -> float:
    assert arrival is not None
    return arrival.at


def _figures(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    missing = len(values) - len(known)
    if not known:
        return f"none of {len(values)}"
    text = f"median {statistics.median(known):.1f} s, max {max(known):.1f} s"
    return text + (f" ({missing} of {len(values)} never came)" if missing else "")


def report(runs: list[Run], settings: Settings, open_after: int, hold_down: float) -> None:
    page_target = open_after * settings.interval + PAGE_SLACK
    resolved_target = hold_down + 2 * settings.interval
    print(
        f"\ninterval {settings.interval:g} s, open_after {open_after}, hold_down {hold_down:g} s: "
        f"targets page ≤ {page_target:g} s (critical), resolved ≤ {resolved_target:g} s"
    )
    print(
        "| mode | runs | page (JSON) | first notice of any rule | e-mail page | resolved after "
        "recovery | notices/run | rules (median s) |"
    )
    print("|---|---:|---|---|---|---|---:|---|")
    for name, mode in MODES.items():
        mine = [r for r in runs if r.mode == name]
        if not mine:
            continue
        pages = [r.critical_page for r in mine]
        resolved = [r.resolved for r in mine]
        met_page = all(p is not None and p <= page_target for p in pages)
        met_resolved = all(r is not None and r <= resolved_target for r in resolved)
        rules: dict[str, list[float]] = {}
        for r in mine:
            for rule, at in r.rules.items():
                rules.setdefault(rule, []).append(at)
        listed = ", ".join(
            f"{rule} {statistics.median(ats):.1f} ({len(ats)}/{len(mine)})"
            for rule, ats in sorted(rules.items(), key=lambda kv: statistics.median(kv[1]))
        )
        page_note = ("met" if met_page else "NOT met") if mode.critical else "no target"
        print(
            f"| {name} | {len(mine)} | {_figures(pages)} ({page_note}) | "
            f"{_figures([r.page for r in mine])} | "
            f"{_figures([r.mail_page for r in mine])} | {_figures(resolved)} "
            f"({'met' if met_resolved else 'NOT met'}) | "
            f"{statistics.median(r.notices for r in mine):g} | {listed} |"
        )


async def bench(args: argparse.Namespace, postgres: PostgresServer, s3: S3Server) -> list[Run]:
    settings = (
        Settings(interval=1.0, alerts={"hold_down": 3.0})
        if args.fast
        else Settings(interval=SHIPPED_INTERVAL)
    )
    modes = [MODES[name] for name in args.modes.split(",")]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="time-to-page-") as directory:
        async with (
            JsonReceiver() as hook,
            SmtpReceiver() as mail,
            signals_stack(
                Path(directory),
                postgres,
                s3,
                settings=settings,
                apprise_urls=[hook.url(), mail.url()],
            ) as stack,
            httpx.AsyncClient(timeout=10.0) as http,
        ):
            config = load_config(stack.config_path)
            engine = open_engine(stack.store_url)
            try:
                reader = HistoryReader(engine)
                for round_ in range(args.runs):
                    for mode in modes:
                        run = await one_run(mode, stack, hook, mail, reader, http)
                        runs.append(run)
                        print(
                            f"round {round_ + 1} {mode.name}: page {run.page}, resolved "
                            f"{run.resolved}, {run.notices} notices {run.rules}; "
                            f"load {load_average()}",
                            flush=True,
                        )
                        stack.check_alive()
            finally:
                await engine.dispose()
            report(runs, settings, config.incidents.open_after, config.alerts.hold_down)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--fast", action="store_true", help="1 s interval, 3 s hold-down, 1 run")
    parser.add_argument("--json", type=Path, help="also write every run here")
    args = parser.parse_args(argv)
    if args.fast and "--runs" not in (argv if argv is not None else sys.argv):
        args.runs = 1
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
    warnings.simplefilter("ignore", DeprecationWarning)  # aiosmtpd's own login_data notice
    with stop_on_sigterm(), PostgresServer() as postgres, S3Server() as s3:
        runs = asyncio.run(bench(args, postgres, s3))
    if args.json is not None:
        args.json.write_text(json.dumps([run.__dict__ for run in runs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
