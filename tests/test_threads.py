"""Thread counts: letters do not depend on them (the count is not in the pass fingerprint), and
the thread benchmark's busy processes stop when it does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.threads import busy_processes, condition
from edge_runtime.mcq import stratified
from edge_runtime.routing.passes import settings_fingerprint
from edge_runtime.runtime import EdgeRuntime


@pytest.fixture(scope="module")
def other_threads(runtime: EdgeRuntime, model_home: Path) -> Iterator[EdgeRuntime]:
    other = 1 if runtime.config.n_threads != 1 else 2
    loaded = EdgeRuntime.load(replace(runtime.config, n_threads=other), home=model_home)
    yield loaded
    loaded.close()


def test_letters_and_the_pass_fingerprint_do_not_depend_on_threads(
    runtime: EdgeRuntime, other_threads: EdgeRuntime
) -> None:
    report = condition(
        {runtime.config.n_threads: runtime, other_threads.config.n_threads: other_threads},
        stratified(1),
        busy=0,
        progress=False,
    )
    assert set(report["letters_differing"].values()) == {0}, report
    assert report["best_threads"] in (runtime.config.n_threads, other_threads.config.n_threads)
    assert settings_fingerprint(runtime) == settings_fingerprint(other_threads)


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
