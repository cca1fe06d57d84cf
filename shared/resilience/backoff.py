"""Backoff schedules: exponential growth capped at ``max_delay``, spread by jitter.

The jitter modes are those of the AWS Architecture Blog's "Exponential Backoff And Jitter":

- ``full``: ``uniform(0, min(max_delay, base * 2**n))``, the default; spreads a herd best.
- ``equal``: half of the capped exponential, plus ``uniform`` over the other half.
- ``decorrelated``: ``min(max_delay, uniform(base, previous * 3))``.
- ``none``: the capped exponential itself (for tests and for callers that add their own spread).
"""

from __future__ import annotations

import enum
import math
import random

# 2**64 times any sensible base already exceeds every max_delay; past it the float would overflow.
_MAX_EXPONENT = 64


class Jitter(enum.StrEnum):
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"
    NONE = "none"


def capped_exponential(base_delay: float, max_delay: float, retry_number: int) -> float:
    """``min(max_delay, base_delay * 2**(retry_number - 1))``, without overflow at any number."""
    exponent = min(max(retry_number - 1, 0), _MAX_EXPONENT)
    return min(max_delay, math.ldexp(base_delay, exponent))


def next_delay(
    jitter: Jitter,
    *,
    base_delay: float,
    max_delay: float,
    retry_number: int,
    previous: float,
    rng: random.Random,
) -> float:
    """The wait before retry number ``retry_number`` (1 for the first retry)."""
    if jitter is Jitter.DECORRELATED:
        upper = max(base_delay, min(max_delay, previous * 3.0))
        return min(max_delay, rng.uniform(base_delay, upper))
    ceiling = capped_exponential(base_delay, max_delay, retry_number)
    if jitter is Jitter.FULL:
        return rng.uniform(0.0, ceiling)
    if jitter is Jitter.EQUAL:
        half = ceiling / 2.0
        return half + rng.uniform(0.0, half)
    return ceiling
