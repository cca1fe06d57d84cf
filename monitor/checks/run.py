"""Running one check of any kind (:class:`CheckRunner`), and what every kind's run shares: its
conditions judged into an :class:`~monitor.checks.spec.Outcome` (:func:`judged`,
:func:`unreached`), and a failure said as a plain class (:func:`failure_of`).

A check's target is outside input, and so is everything it does: refusing, hanging, answering
garbage, a megabyte, a certificate that has expired. None of it is an exception here. The
check's ``timeout`` is one overall deadline on the runner's clock (connect, answer, everything),
and whatever else goes wrong inside a kind's code is an ``unknown`` outcome and one log line, so
one bad check never stops another.

What an outcome says never carries a URL, a user, a password or a query: a failure is said as
its class (``connection refused``, ``certificate not valid: certificate has expired``), never as
the text of an httpx, ssl or driver exception, which may carry the URL it was raised for.
"""

from __future__ import annotations

import errno
import functools
import importlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import cast

import httpx

from monitor.checks.conditions import (
    HTTP_DEFAULT,
    Condition,
    Observation,
    evaluate,
    failed_text,
    parse_condition,
)
from monitor.checks.context import RunContext
from monitor.checks.resolve import Resolver
from monitor.checks.spec import ERROR_CHARS, OBSERVED_CHARS, Check, CheckKind, Outcome
from monitor.checks.trust import trust
from monitor.store.models import Status
from shared.resilience import Clock, within
from shared.resilience.sanitize import one_line

logger = logging.getLogger("monitor.checks")

MAX_CONNECTIONS = 256
"""HTTP connections in flight at once per client: as many as the daemon's checks in flight."""
KEEPALIVE_CONNECTIONS = 0
"""A fresh connection per check, as the daemon's health probes (``monitor.daemon``): at
intervals of seconds httpx would not reuse one anyway (its keep-alive expiry is 5 s), every idle
pooled connection costs a syscall per request, and a kept-alive connection the target closes as
it is reused would read as a failed check."""
DEFAULT_CONDITIONS: Mapping[CheckKind, tuple[str, ...]] = {CheckKind.HTTP: (HTTP_DEFAULT,)}
"""What a kind is judged by when no condition is written (besides its implicit ones)."""
CONNECTED = "CONNECTED"
REASON_CHARS = 80
"""ssl's verification message, cut: long enough for the name a certificate was refused for
(``Hostname mismatch, certificate is not valid for 'front.questcity.example'.``)."""
CHAIN_DEPTH = 16
"""Exceptions looked at in a failure's chain (causes, contexts, groups' members), at most."""

KindRun = Callable[[Check, RunContext], Awaitable[Outcome]]


class CheckRunner:
    """Runs checks: one at a time per call, any number at once. Owns the HTTP clients every HTTP
    check shares (one per trust setting, made when first needed, made again when its ``ca_file``
    changes) and the resolver their names are looked up with; close it with :meth:`aclose`."""

    def __init__(
        self,
        clock: Clock,
        *,
        environ: Mapping[str, str] | None = None,
        nameservers: tuple[tuple[str, int], ...] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.clock = clock
        self.resolver = Resolver()
        """Its own lookup threads: one monitor's checks never wait behind another's lookups."""
        self.context = RunContext(
            clock=clock,
            http=self,
            environ=environ,
            nameservers=tuple(nameservers),
            resolver=self.resolver,
        )
        self._transport = transport
        self._max_connections = max_connections
        self._clients: dict[str | None, tuple[ssl.SSLContext, httpx.AsyncClient]] = {}
        self._retired: list[httpx.AsyncClient] = []
        """Clients of a ``ca_file`` since changed: a request may still be on one; closed last."""
        self._closed = False
        self._logged: set[tuple[str, str]] = set()

    def client(self, *, ca_file: str | None) -> httpx.AsyncClient:
        """The shared client trusting ``ca_file`` (None: the system's CAs), made again once the
        file changes (a renewed private CA is trusted without a restart, as the tls kind does).
        :class:`~monitor.checks.trust.Unreadable` when ``ca_file`` cannot be read as CAs (tried
        again on the next run: it may be fixed)."""
        if self._closed:
            raise RuntimeError("the check runner is closed")
        verify = trust(ca_file)
        known = self._clients.get(ca_file)
        if known is not None and known[0] is verify:
            return known[1]
        if known is not None:
            self._retired.append(known[1])
        client = httpx.AsyncClient(
            transport=self._transport,
            verify=verify,
            follow_redirects=False,  # the http kind follows them itself (origins, methods)
            limits=httpx.Limits(
                max_connections=self._max_connections,
                max_keepalive_connections=KEEPALIVE_CONNECTIONS,
            ),
        )
        self._clients[ca_file] = (verify, client)
        return client

    def load(self, kinds: Iterable[CheckKind]) -> None:
        """Import the modules of these kinds now (a daemon's, at start): an import on the first
        run of a kind would hold the loop, every check and probe with it, while it compiles."""
        for kind in kinds:
            _kind_run(kind)

    async def run(self, check: Check) -> Outcome:
        """One run of ``check``, within its ``timeout``. Never raises for anything the target
        does, nor for a fault in a kind's code (that is an ``unknown`` outcome)."""
        started = self.clock.monotonic()
        try:
            return await within(
                _kind_run(check.kind)(check, self.context), check.timeout, self.clock
            )
        except TimeoutError:
            return unreached(
                check,
                f"timed out after {check.timeout:g} s",
                latency_ms=(self.clock.monotonic() - started) * 1000.0,
            )
        except Exception as error:  # a fault of ours, not the target's: said, never fatal
            self._log(check, error)
            return Outcome(
                Status.UNKNOWN,
                None,
                error=f"the monitor could not run this check ({type(error).__name__})",
            )

    async def aclose(self) -> None:
        self._closed = True
        clients = [client for _, client in self._clients.values()] + self._retired
        self._clients.clear()
        self._retired.clear()
        for client in clients:
            await client.aclose()
        self.resolver.close()

    def _log(self, check: Check, error: Exception) -> None:
        # Once per check and kind of fault: a check failing the same way every 10 s must not
        # fill the log. Only the type: an exception's text may carry a URL or a password.
        seen = (check.name, type(error).__name__)
        level = logging.DEBUG if seen in self._logged else logging.WARNING
        if len(self._logged) < 10_000:
            self._logged.add(seen)
        logger.log(
            level, "check %s could not run: %s (a fault in the monitor)", check.name, seen[1]
        )


@functools.cache
def _kind_run(kind: CheckKind) -> KindRun:
    # Imported when first needed: a monitor without PostgreSQL or DNS checks never loads
    # asyncpg or dnspython.
    module = importlib.import_module(f"monitor.checks.{kind.value}")
    return cast(KindRun, module.run)


@functools.cache
def _defaults(kind: CheckKind) -> tuple[Condition, ...]:
    return tuple(parse_condition(text, kind) for text in DEFAULT_CONDITIONS.get(kind, ()))


def names(check: Check, placeholder: str) -> bool:
    """Whether a written condition reads ``placeholder`` (``BODY``: the answer must be read)."""
    return any(condition.placeholder == placeholder for condition in check.conditions)


def judged(
    check: Check,
    seen: Observation,
    *,
    latency_ms: float | None,
    http_status: int | None = None,
    failure: str | None = None,
    warning: str | None = None,
) -> Outcome:
    """The outcome of a run that reached its target: its written conditions (or, none written,
    its kind's default) held against what was ``seen``. ``failure``: an implicit condition of
    the kind that did not hold (an ``expect`` not seen, NXDOMAIN, a certificate too close to
    expiry), said first. Healthy only when nothing failed; ``warning`` is kept only then."""
    results = evaluate(check.conditions or _defaults(check.kind), seen)
    failed = "; ".join(text for text in (failure, failed_text(results)) if text)
    if failed:
        return Outcome(
            Status.UNHEALTHY, latency_ms, http_status=http_status, error=failed, results=results
        )
    return Outcome(
        Status.HEALTHY, latency_ms, http_status=http_status, warning=warning, results=results
    )


def unreached(
    check: Check,
    error: str,
    *,
    latency_ms: float | None,
    status: Status = Status.UNREACHABLE,
    http_status: int | None = None,
) -> Outcome:
    """The outcome of a run that did not get an answer: ``status`` with ``error``. A check whose
    written conditions read ``[CONNECTED]`` is judged by them too: when all of them hold
    (``[CONNECTED] == false`` watching that a port stays closed) the run is healthy; when one
    fails (``[CONNECTED] == true``, Gatus's idiom) it stays ``status``, and its error says why
    it could not connect first (``connection refused; [CONNECTED] == true failed: got false``):
    refused, timed out and a name that does not resolve are what the on-call engineer needs
    to tell apart."""
    if status is Status.UNREACHABLE and names(check, CONNECTED):
        seen = Observation(connected=False, response_ms=latency_ms)
        outcome = judged(check, seen, latency_ms=latency_ms)
        if outcome.status is Status.HEALTHY:
            return outcome
        error = one_line(f"{error}; {outcome.error}", ERROR_CHARS)
        return Outcome(
            status, latency_ms, http_status=http_status, error=error, results=outcome.results
        )
    return Outcome(status, latency_ms, http_status=http_status, error=error)


def unrunnable(error: str) -> Outcome:
    """The monitor could not run the check (a variable it needs is not set): ``unknown``."""
    return Outcome(Status.UNKNOWN, None, error=error)


def quoted(text: str) -> str:
    """An observed value as an error shows it: ``"one line, cut"``, or ``nothing``."""
    return f'"{one_line(text, OBSERVED_CHARS)}"' if text else "nothing"


def failure_of(error: BaseException, timeout: float) -> tuple[Status, str]:
    """A failure to connect or exchange, said as a plain class, and the status it means: a
    certificate or handshake refused is an answer (``unhealthy``), the rest is not reaching the
    target (``unreachable``). Reads the whole chain (httpx wraps httpcore wraps anyio's
    ``All connection attempts failed`` whose cause is the refusal), never any text from it but
    ssl's fixed verification message."""
    leaves = list(_chain(error))
    for leaf in leaves:
        if isinstance(leaf, ssl.SSLCertVerificationError):
            reason = one_line(leaf.verify_message or "certificate verify failed", REASON_CHARS)
            return Status.UNHEALTHY, f"certificate not valid: {reason}"
    for leaf in leaves:
        if isinstance(leaf, ssl.SSLError):
            reason = one_line(str(leaf.reason or "error").replace("_", " ").lower(), 40)
            return Status.UNHEALTHY, f"TLS handshake failed: {reason}"
    for leaf in leaves:
        if isinstance(leaf, socket.gaierror):
            return Status.UNREACHABLE, "name does not resolve"
    # Refused by one of the name's addresses (::1 unreachable, 127.0.0.1 refused): the host is
    # there and said no, which says more than the address that could not be tried.
    if any(isinstance(leaf, ConnectionRefusedError) for leaf in leaves):
        return Status.UNREACHABLE, "connection refused"
    for leaf in leaves:
        if isinstance(leaf, TimeoutError) or (
            isinstance(leaf, OSError) and leaf.errno == errno.ETIMEDOUT
        ):
            return Status.UNREACHABLE, f"timed out after {timeout:g} s"
    for leaf in leaves:
        if isinstance(leaf, OSError) and leaf.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return Status.UNREACHABLE, "no route to host"
    if any(isinstance(leaf, ConnectionError) for leaf in leaves):
        return Status.UNREACHABLE, "connection lost"
    return Status.UNREACHABLE, "connection failed"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: causes, contexts, a group's members, an exception passed as
    an argument (httpcore's own errors carry the original that way)."""
    todo: list[BaseException] = [error]
    seen: set[int] = set()
    while todo and len(seen) < CHAIN_DEPTH:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
