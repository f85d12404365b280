"""A circuit breaker: stop calling a cloud that keeps failing, probe again after a cool-down.

closed --(``failures`` consecutive unhealthy attempts)--> open --(``cooldown`` s)--> half-open
half-open lets one probe through: success closes the breaker, failure opens it again.
An explicit ``force`` (``foggen outbox flush``) is let through in any state; its outcome
counts like any other attempt's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum

from cloud_client.errors import CircuitOpenError


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe; every :meth:`allow` must be followed by one ``record_*`` call."""

    def __init__(
        self,
        *,
        failures: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown < 0:
            raise ValueError("failures must be >= 1 and cooldown >= 0")
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self, *, force: bool = False) -> None:
        """Return if a call may go out now, else raise :class:`CircuitOpenError`."""
        with self._lock:
            state = self._state()
            if force or state is BreakerState.CLOSED:
                return
            if state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return
            assert self._opened_at is not None
            retry_in = max(0.0, self._opened_at + self.cooldown - self._clock())
        raise CircuitOpenError(retry_in)

    def record_success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._probing = False

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                self._opened_at = self._clock()
            self._probing = False
