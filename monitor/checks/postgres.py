"""A ``postgres`` check: connect with the URL in the environment variable ``url_env``, run
``SELECT 1``, close.

- healthy: logged in, ``SELECT 1`` returned 1, every written condition held;
- unhealthy: the server answered but refused (``authentication failed``, ``database does not
  exist``, ``too many connections``, ``server error 57P01``), or a condition failed;
- unreachable: refused, timed out, the host name does not resolve, the connection was lost;
- unknown: the variable is not set, or does not hold a PostgreSQL URL.

The URL carries a role and its password, and asyncpg's exceptions may carry the role, the
database or the host: what an outcome says is a plain class chosen from the SQLSTATE or the
exception's type, never an exception's text nor the URL. A SQLAlchemy URL
(``postgresql+asyncpg://…``, what ``QUESTCITY_DATABASE_URL`` holds) is read as the plain one.
The session is always closed: politely when the check went well, else dropped at once.

The URL's host is looked up by the context's resolver (:mod:`monitor.checks.resolve`), never on
the loop's default executor, and the session goes to its address; except with ``sslmode
verify-full``, whose certificate check needs the name (asyncpg then looks it up itself). A URL
with several hosts, or a socket directory, is left to asyncpg as it is.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

import asyncpg

from monitor.checks.conditions import Observation
from monitor.checks.context import RunContext
from monitor.checks.resolve import Resolver, Unresolved, elapsed_ms
from monitor.checks.run import failure_of, judged, unreached, unrunnable
from monitor.checks.spec import Check, Outcome, PostgresSettings
from monitor.store.models import Status
from shared.resilience import Clock

APPLICATION_NAME = "questcity-monitor"
"""How the check's sessions show in ``pg_stat_activity``."""
CLOSE_SECONDS = 1.0
"""How long a polite close (Terminate) may take before the session is dropped."""

_SAID = {
    "28P01": "authentication failed",
    "28000": "authentication failed",
    "3D000": "database does not exist",
    "53300": "too many connections",
    "57P03": "server not accepting connections yet",
}
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
_DRIVER = re.compile(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", re.IGNORECASE)


async def run(check: Check, context: RunContext) -> Outcome:
    """One run; the overall deadline is the runner's (asyncpg's own is the same)."""
    settings = check.settings
    if not isinstance(settings, PostgresSettings):
        raise TypeError(f"{check.name} is a {check.kind} check, not postgres")
    url = context.env(settings.url_env)
    if url is None:
        return unrunnable(f"url_env {settings.url_env} is not set")
    dsn = _DRIVER.sub(r"\1://", url)
    clock = context.clock
    started = clock.monotonic()
    try:
        hosts, ports = await _addresses(dsn, context.resolver)
    except ValueError:
        return unrunnable(f"url_env {settings.url_env} does not hold a PostgreSQL URL")
    except Unresolved as error:
        return unreached(check, error.reason, latency_ms=elapsed_ms(clock, started))
    try:
        connection = await asyncpg.connect(
            dsn,
            host=hosts,
            port=ports,
            timeout=check.timeout,
            # No named prepared statements: the check also works through PgBouncer.
            statement_cache_size=0,
            server_settings={"application_name": APPLICATION_NAME},
        )
    except ValueError:  # asyncpg's ClientConfigurationError: a URL it cannot read
        return unrunnable(f"url_env {settings.url_env} does not hold a PostgreSQL URL")
    except Exception as error:
        return _failed(check, error, started, clock)
    try:
        value = await connection.fetchval("SELECT 1", timeout=check.timeout)
    except BaseException as error:
        connection.terminate()
        if not isinstance(error, Exception):
            raise  # cancelled at the runner's deadline
        return _failed(check, error, started, clock)
    latency_ms = elapsed_ms(clock, started)
    await _close(connection)
    if value != 1:
        return Outcome(Status.UNHEALTHY, latency_ms, error="SELECT 1 did not return 1")
    seen = Observation(connected=True, response_ms=latency_ms)
    return judged(check, seen, latency_ms=latency_ms)


def _failed(check: Check, error: Exception, started: float, clock: Clock) -> Outcome:
    """What went wrong, as a plain class: the server's refusal (unhealthy) by its SQLSTATE,
    anything else as not reaching it (unreachable)."""
    latency_ms = elapsed_ms(clock, started)
    if isinstance(error, asyncpg.PostgresConnectionError):  # class 08: the session was lost
        return unreached(check, "connection lost", latency_ms=latency_ms)
    if isinstance(error, asyncpg.PostgresError):
        code = str(getattr(error, "sqlstate", "") or "")
        if not _SQLSTATE.fullmatch(code):
            code = "unknown"
        said = _SAID.get(code, f"server error {code}")
        return Outcome(Status.UNHEALTHY, latency_ms, error=said)
    if isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError):
        # Something answered, but not as PostgreSQL does (another protocol on the port).
        return Outcome(Status.UNHEALTHY, latency_ms, error="not a PostgreSQL answer")
    if isinstance(error, OSError | TimeoutError):
        status, text = failure_of(error, check.timeout)
        return unreached(check, text, latency_ms=latency_ms, status=status)
    raise error  # a fault of ours: the runner says it as one


async def _close(connection: asyncpg.Connection) -> None:
    """Close politely within :data:`CLOSE_SECONDS`; else (or cancelled) drop the session."""
    try:
        await connection.close(timeout=CLOSE_SECONDS)
    except BaseException as error:
        connection.terminate()
        if not isinstance(error, Exception):
            raise


async def _addresses(dsn: str, resolver: Resolver) -> tuple[list[str] | None, list[int] | None]:
    """``host`` and ``port`` for ``asyncpg.connect``: the URL's one host looked up by
    ``resolver`` (its addresses, tried in turn), so asyncpg never looks it up on the loop's
    default executor; None (asyncpg reads the URL) for several hosts, a socket directory, no
    host, or ``sslmode=verify-full`` (the certificate is checked against the name).
    ``ValueError`` for a URL that cannot be read."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    hostspec = parts.netloc.rpartition("@")[2]
    host = parts.hostname
    if parts.scheme not in ("postgres", "postgresql"):
        return None, None  # asyncpg says it is not a PostgreSQL URL
    if not host or "," in hostspec or "%" in hostspec or "host" in query:
        return None, None
    sslmode = query.get("sslmode", [os.environ.get("PGSSLMODE", "")])[-1]
    if sslmode == "verify-full":
        return None, None
    port = parts.port or int(query.get("port", [os.environ.get("PGPORT", "5432")])[-1])
    addresses = await resolver.addresses(host, port)
    return list(addresses), [port] * len(addresses)
