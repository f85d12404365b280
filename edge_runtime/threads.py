"""How many llama.cpp threads the next question gets: every allowed core while the cores are
free, one fewer per core other processes keep busy.

llama.cpp's threads meet at a barrier after every operation of the graph, so a thread that
another process preempts stalls all of them. Measured on 2 cores (``make threads``,
``reports/threads/``): the 270M answers in 134 ms on 2 threads and 227 ms on 1 when the
machine is quiet, but in 494 ms on 2 threads and 289 ms on 1 beside one busy process; the 1.5B
in 896 against 1520 ms quiet, 1989 against 1545 ms beside one.

The others' load is the machine's busy CPU time (``/proc/stat``) minus this process's own
(``time.process_time``, every thread of it) over the time since the last look, so the service's
own threads never count. Where ``/proc/stat`` cannot be read, every allowed core is used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
MIN_INTERVAL_S = 0.05  # shorter: too few clock ticks to tell; the last choice stands


@dataclass(frozen=True)
class Sample:
    wall_s: float
    busy_s: float  # CPU time of every process on the machine
    own_s: float  # this process's CPU time


def machine_busy_seconds(path: Path = PROC_STAT) -> float | None:
    """All CPUs' non-idle time since boot (user, nice, system, irq, softirq, steal), or None."""
    try:
        with path.open(encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class ThreadPolicy:
    """The thread count for the next question, between 1 and ``max_threads``."""

    def __init__(
        self,
        max_threads: int,
        *,
        busy: Callable[[], float | None] = machine_busy_seconds,
        own: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be positive")
        self.max_threads = max_threads
        self._busy, self._own, self._clock = busy, own, clock
        self._last = self._sample()
        self.threads = max_threads
        self.others = 0.0  # cores the other processes kept busy over the last interval

    def _sample(self) -> Sample | None:
        busy = self._busy()
        return None if busy is None else Sample(self._clock(), busy, self._own())

    def choose(self) -> int:
        now = self._sample()
        if now is None or self._last is None:
            self._last = now
            return self.max_threads
        elapsed = now.wall_s - self._last.wall_s
        if elapsed < MIN_INTERVAL_S:
            return self.threads
        others = (now.busy_s - self._last.busy_s - (now.own_s - self._last.own_s)) / elapsed
        self._last, self.others = now, max(0.0, others)
        self.threads = max(1, min(self.max_threads, usable_cores() - round(self.others)))
        return self.threads


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
