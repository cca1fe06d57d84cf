"""Integration-test infrastructure: real servers started by the test suite, and a fault proxy.

- :class:`~tests.support.postgres.PostgresServer`: a throwaway PostgreSQL cluster.
- :class:`~tests.support.s3.S3Server`: a throwaway S3 server (SeaweedFS ``weed mini``).
- :class:`~tests.support.faultproxy.FaultProxy`: a TCP proxy that refuses, blackholes, resets or
  slows connections on command, in front of either.

The pytest fixtures built on them (``postgres_server``, ``s3_server``, ``pg_proxy``, ``s3_proxy``)
live in ``tests/conftest.py``.
"""

from tests.support.faultproxy import FaultProxy, Mode
from tests.support.postgres import PostgresNotInstalledError, PostgresServer
from tests.support.process import ServerStartError
from tests.support.s3 import S3Server, WeedNotInstalledError

__all__ = [
    "FaultProxy",
    "Mode",
    "PostgresNotInstalledError",
    "PostgresServer",
    "S3Server",
    "ServerStartError",
    "WeedNotInstalledError",
]
