"""Thread counts: letters do not depend on them (the count is not in the pass fingerprint), and
the thread benchmark's busy processes stop when it does."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.threads import busy_processes, condition
from edge_runtime.mcq import stratified
from edge_runtime.routing.passes import settings_fingerprint
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.threads import ThreadPolicy, usable_cores


@pytest.fixture(scope="module")
def other_threads(runtime: EdgeRuntime) -> Iterator[EdgeRuntime]:
    other = 1 if runtime.config.n_threads != 1 else 2
    config = replace(runtime.config, n_threads=other, adaptive_threads=False)
    sibling = runtime.sibling(config=config, n_threads=other)
    yield sibling
    sibling.close()


def test_letters_and_the_pass_fingerprint_do_not_depend_on_threads(
    runtime: EdgeRuntime, other_threads: EdgeRuntime
) -> None:
    mine = str(runtime.config.n_threads)
    report = condition(
        {mine: runtime, str(other_threads.engine.n_threads): other_threads},
        stratified(1),
        busy=0,
        progress=False,
    )
    assert set(report["letters_differing"].values()) == {0}, report
    assert report["best_threads"] in (mine, str(other_threads.engine.n_threads))
    assert settings_fingerprint(runtime) == settings_fingerprint(other_threads)


def test_a_busy_process_takes_a_thread() -> None:
    """On the real /proc/stat: one spinning process is seen as about one busy core (on a machine
    with other load the figure only grows, so the bound holds there too)."""
    policy = ThreadPolicy(max_threads=64)
    with busy_processes(1, seconds=30):
        policy.choose()
        time.sleep(1.0)
        policy.choose()
    assert policy.others >= 0.7, policy.others
    assert policy.threads <= max(1, usable_cores() - 1)


def test_the_choice_follows_the_others_load() -> None:
    """The arithmetic, on injected clocks: busy time of the machine minus this process's (so
    the runtime's own threads never count)."""
    state = {"wall": 0.0, "busy": 100.0, "own": 10.0}
    policy = ThreadPolicy(
        2, busy=lambda: state["busy"], own=lambda: state["own"], clock=lambda: state["wall"]
    )
    cores = usable_cores()

    def after(seconds: float, machine: float, own: float) -> int:
        state["wall"] += seconds
        state["busy"] += machine
        state["own"] += own
        return policy.choose()

    assert after(1.0, 2.0, 2.0) == min(2, cores)  # only this process worked
    assert policy.others == 0.0
    assert after(1.0, 1.0, 0.0) == max(1, min(2, cores - 1))  # another process took a core
    assert after(0.01, 0.0, 0.0) == policy.threads  # too short to tell: the choice stands
    assert after(1.0, 3.0, 0.0) == 1  # three cores' worth of others: one thread, never zero
    unreadable = ThreadPolicy(3, busy=lambda: None)
    assert unreadable.choose() == 3


def test_busy_processes_run_inside_and_are_gone_after() -> None:
    def children() -> set[int]:
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.add(int(entry.name))
        return found

    before = children()
    with busy_processes(2, seconds=30):
        assert len(children() - before) == 2
    assert children() - before == set()
