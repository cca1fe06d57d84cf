"""The condition language of ``[[checks]]`` (Gatus's, ARCHITECTURE §9): the interface the other
modules use. Its parser and evaluator are being written (issue #16)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.checks.spec import CheckKind, ConditionResult


class ConditionError(ValueError):
    """A condition that cannot be parsed, or names a placeholder its kind does not have; the
    message says what is wrong and what to write instead."""


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    """As written in the file."""
    placeholder: str
    """``STATUS``, ``RESPONSE_TIME``, ``BODY``, ``CONNECTED``, ``DNS_RCODE``,
    ``CERTIFICATE_EXPIRATION``."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What a run saw, for its conditions: None where the kind has no such value."""

    status: int | None = None
    response_ms: float | None = None
    body: str | None = None
    connected: bool | None = None
    dns_rcode: str | None = None
    certificate_seconds: float | None = None
    """Seconds until the certificate expires (negative: expired)."""


def parse_condition(text: str, kind: CheckKind) -> Condition:
    raise NotImplementedError


def evaluate(conditions: Sequence[Condition], seen: Observation) -> tuple[ConditionResult, ...]:
    raise NotImplementedError


def failed_text(results: Sequence[ConditionResult]) -> str | None:
    raise NotImplementedError
