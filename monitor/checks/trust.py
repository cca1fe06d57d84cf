"""The CAs a check trusts, as one client ``SSLContext`` per ``ca_file`` (:func:`trust`), shared by
the ``http`` kind's clients and the ``tls`` kind: both verify the chain and the name, against the
same CAs, and both pick up a renewed private CA (the file's modification time is part of the
key). No ``ca_file``: the system's CAs, for both."""

from __future__ import annotations

import os
import ssl
import threading

CONTEXTS = 32
"""Trust settings kept ready (one per ca_file and its modification time)."""

_contexts: dict[tuple[str | None, int | None], ssl.SSLContext] = {}
_lock = threading.Lock()


class Unreadable(OSError):
    """The ca_file cannot be read, or holds no certificate."""


def trust(ca_file: str | None) -> ssl.SSLContext:
    """The client context for ``ca_file`` (None: the system's CAs), chain and name verified:
    the same object while the file is unchanged, a new one once it changes. Raises
    :class:`Unreadable`."""
    mtime: int | None = None
    if ca_file is not None:
        try:
            mtime = os.stat(ca_file).st_mtime_ns
        except OSError:
            raise Unreadable("ca_file cannot be read") from None
    key = (ca_file, mtime)
    with _lock:
        found = _contexts.get(key)
    if found is not None:
        return found
    try:
        made = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError, ValueError):
        raise Unreadable("ca_file holds no certificate") from None
    made.check_hostname = True
    made.verify_mode = ssl.CERT_REQUIRED
    with _lock:
        # Made twice at once: the first one kept is the one everybody gets.
        found = _contexts.get(key)
        if found is not None:
            return found
        for old in [k for k in _contexts if k[0] == ca_file]:
            del _contexts[old]  # the file changed: its earlier contents are no longer trusted
        if len(_contexts) >= CONTEXTS:
            del _contexts[next(iter(_contexts))]
        _contexts[key] = made
    return made
