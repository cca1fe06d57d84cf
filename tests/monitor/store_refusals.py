"""A monitor store that refuses to record checks until told to take them again, for the
daemon's tests of an unwritable store (its log lines and its self-alert)."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.store import StoreUnavailable
from monitor.store.writer import HistoryWriter


class RefusedChecks:
    """``writer.record_check`` raises :class:`StoreUnavailable` while :attr:`failing`."""

    def __init__(
        self,
        writer: HistoryWriter,
        monkeypatch: pytest.MonkeyPatch,
        reason: str = "the store file is read-only",
    ) -> None:
        self.failing = True
        record_check = writer.record_check

        async def refusing(*args: Any, **kwargs: Any) -> Any:
            if self.failing:
                raise StoreUnavailable(reason)
            return await record_check(*args, **kwargs)

        monkeypatch.setattr(writer, "record_check", refusing)
