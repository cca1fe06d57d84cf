"""The error a request ends with, at the bottom of the backend so every layer may raise it.

:class:`ApiError` is what a client is told: a status, a stable ``code`` and a message, plus
headers (``Retry-After``, ``WWW-Authenticate``) and extra JSON fields. The services below the
HTTP layer raise it too (the auth guards' 401/403, degradation's 503), so it lives here rather
than beside the HTTP rendering (:mod:`backend.api.errors`), which the services must not import.

The dependencies keep their own trees, translated at their edges, and never reach a client as
they are::

    Exception
    ├── ApiError                        (here) what the client is told
    ├── backend.db.errors.DatabaseError the database's failures and conflicts
    ├── backend.storage.ObjectStoreError the object store's failures and missing objects
    └── backend.domain.InvalidInput      a request the domain rules refuse (a ValueError)

:func:`backend.degradation.unavailable` turns a dependency failure into its 503 ApiError.
"""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An answer other than success: ``{"error": code, "message": message, **extra}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
