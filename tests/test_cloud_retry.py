"""Backoff with jitter and Retry-After, as pure functions."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from cloud_client.retry import backoff_delay, parse_retry_after


@pytest.mark.parametrize(
    "attempt, base, cap, low, high",
    [
        (1, 0.5, 4.0, 0.25, 0.5),
        (2, 0.5, 4.0, 0.5, 1.0),
        (3, 0.5, 4.0, 1.0, 2.0),
        (4, 0.5, 4.0, 2.0, 4.0),
        (9, 0.5, 4.0, 2.0, 4.0),  # capped
        (1, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_backoff_doubles_within_its_jitter_band(
    attempt: int, base: float, cap: float, low: float, high: float
) -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, base=base, cap=cap, rng=rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    if high > low:
        assert len(set(delays)) > 150  # jittered: callers that failed together spread out


def test_backoff_attempts_are_one_based() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, base=1.0, cap=1.0, rng=random.Random())


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        (format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, timezone.utc), usegmt=True), 0.0),
        (None, None),
        ("", None),
        ("-3", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
