"""Filling the username keys of accounts made by pods older than the key (rolling upgrades).

Migration 0003 lets such rows hold ``''`` (the unique index leaves it out); until they are
filled they log in by their exact name only, and a look-alike of their name could be registered.
The backend fills them when it starts and before each registration; a fill that fails (another
replica filling the same rows at that moment, the database busy) is logged and left to the next.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from backend.auth.usernames import username_key
from backend.db import repositories as repo
from backend.db.database import Database
from backend.db.errors import Conflict
from backend.degradation import DEPENDENCY_FAILURES

logger = logging.getLogger("backend")

_LEFT_FOR_LATER: tuple[type[BaseException], ...] = (Conflict, SQLAlchemyError, *DEPENDENCY_FAILURES)


async def fill_missing(database: Database, limit: int = 1000) -> int:
    """Fill up to ``limit`` missing username keys; how many were filled (0 if the fill failed)."""
    try:
        filled = await database.write(repo.fill_missing_username_keys, username_key, limit)
    except _LEFT_FOR_LATER as error:
        logger.warning(
            "could not fill missing username keys now (%s); the next start or registration will",
            type(error).__name__,
            extra={"event": "username_keys_unfilled"},
        )
        return 0
    if filled:
        logger.info(
            "filled the username keys of %d account(s) made by an older version",
            filled,
            extra={"event": "username_keys_filled", "count": filled},
        )
    return filled
