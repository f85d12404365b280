"""Retry timing as pure functions: exponential backoff with jitter, and ``Retry-After``."""

from __future__ import annotations

import email.utils
import math
import random


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    "Equal jitter": half of ``min(cap, base * 2**(attempt - 1))`` for sure, the other half
    drawn uniformly, so callers that failed together do not retry together and no wait is zero.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2.0 + rng.uniform(0.0, ceiling / 2.0)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None.

    ``now`` is the current Unix time (for the date form). Unreadable or negative values give
    None (the caller falls back to its own backoff); a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        return None
    return seconds
