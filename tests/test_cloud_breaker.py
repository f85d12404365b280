"""The circuit breaker's states, on a clock the test controls."""

from __future__ import annotations

import pytest

from cloud_client.breaker import BreakerState, CircuitBreaker
from cloud_client.errors import CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures: int = 3, cooldown: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(failures=failures, cooldown=cooldown, clock=clock), clock


def test_opens_after_consecutive_failures_only() -> None:
    breaker, _ = make()
    for _ in range(2):
        breaker.allow()
        breaker.record_failure()
    breaker.allow()
    breaker.record_success()  # a success resets the count
    for _ in range(2):
        breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.allow()
    assert info.value.retry_in == pytest.approx(10.0) and info.value.kind == "circuit_open"


def test_half_open_lets_exactly_one_probe_through() -> None:
    breaker, clock = make()
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.allow()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.allow()  # a second caller while the probe is out
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.allow()


def test_a_failed_probe_opens_it_again_for_a_whole_cooldown() -> None:
    breaker, clock = make()
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10.0
    breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 9.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


def test_force_goes_through_in_every_state() -> None:
    breaker, _ = make(failures=1)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.allow(force=True)
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("failures, cooldown", [(0, 1.0), (1, -1.0)])
def test_bad_settings_are_refused(failures: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures=failures, cooldown=cooldown)
