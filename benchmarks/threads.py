"""`make threads`: fast mode at each llama.cpp thread count, quiet and beside busy processes.

python -m benchmarks.threads [--model NAME] [--per-domain N] [--threads 1,2,auto] [--busy 0,1,2]

llama.cpp's threads meet at a barrier after every operation: when another process takes a
core, one descheduled thread stalls the others. For each condition (0, 1 or 2 busy
single-threaded processes at nice 0, started here and stopped after), every question runs at
every thread count in turn (the order alternates per question, so neither always runs
second), each from the cached system prompt as a new question would. ``auto`` is the runtime's
default: adaptive threads (edge_runtime.threads), at most all cores. Every setting is a context
of its own on the same weights. Reported: the median per setting, each setting's ratio to the
best in its condition, and how many letters differ between settings (they must not: the
thread count is not in the pass fingerprint). Times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.report import machine, write_json
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.mcq import stratified
from edge_runtime.provenance import git_commit
from edge_runtime.question import Question
from edge_runtime.runtime import EdgeRuntime

BUSY_LOOP = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


@contextmanager
def busy_processes(n: int, *, seconds: float = 3600.0) -> Iterator[None]:
    """``n`` single-threaded spinning processes (nice 0), stopped on exit."""
    procs = [
        subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(seconds=seconds)])
        for _ in range(n)
    ]
    try:
        time.sleep(0.5 if n else 0.0)  # let the scheduler see them
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def timed_fast(runtime: EdgeRuntime, question: Question) -> tuple[float, str | None]:
    runtime.warm()  # the cache holds the system prompt only, as for a new question
    started = time.perf_counter()
    result = runtime.run_edge(question, mode=Mode.FAST)
    return (time.perf_counter() - started) * 1000.0, result.letter


AUTO = "auto"


def condition(
    runtimes: dict[str, EdgeRuntime], questions: Sequence[Question], busy: int, *, progress: bool
) -> dict[str, Any]:
    times: dict[str, list[float]] = {t: [] for t in runtimes}
    letters: dict[str, list[str | None]] = {t: [] for t in runtimes}
    used: list[int] = []  # what the adaptive setting chose
    order = list(runtimes)
    with busy_processes(busy):
        bar = tqdm(questions, desc=f"{busy} busy", unit="q", disable=not progress)
        for n, question in enumerate(bar):
            for threads in order if n % 2 == 0 else order[::-1]:
                ms, letter = timed_fast(runtimes[threads], question)
                times[threads].append(ms)
                letters[threads].append(letter)
                if threads == AUTO:
                    used.append(runtimes[threads].threads_in_use)
    medians = {t: statistics.median(v) for t, v in times.items()}
    best = min(medians.values())
    first = letters[order[0]]
    return {
        "busy_processes": busy,
        "median_ms": {t: round(m, 1) for t, m in medians.items()},
        "ratio_to_best": {t: round(m / best, 3) for t, m in medians.items()},
        "best_threads": min(medians, key=lambda t: medians[t]),
        "letters_differing": {
            t: sum(a != b for a, b in zip(first, letters[t], strict=True)) for t in order
        },
        "auto_chose": {str(n): used.count(n) for n in sorted(set(used))},
    }


def setting_runtimes(base: RuntimeConfig, settings: Sequence[str]) -> dict[str, EdgeRuntime]:
    """A runtime per setting, on one load of the weights (``auto``: adaptive, at most
    ``base.n_threads``; a count: that many threads, fixed)."""
    first = EdgeRuntime.load(base)
    runtimes: dict[str, EdgeRuntime] = {}
    try:
        for t in settings:
            if t == AUTO:
                config = replace(base, adaptive_threads=True)
                runtimes[t] = first.sibling(config=config)
            else:
                config = replace(base, n_threads=int(t))
                runtimes[t] = first.sibling(config=config, n_threads=int(t))
    except BaseException:
        for runtime in runtimes.values():
            runtime.close()
        raise
    finally:
        first.close()  # the siblings keep the weights
    return runtimes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a named model (default: the embedded)")
    parser.add_argument("--per-domain", type=int, default=3, help="eval questions per domain")
    parser.add_argument(
        "--threads", default="1,2,auto", help="comma-separated thread counts, and/or auto"
    )
    parser.add_argument("--busy", default="0,1,2", help="busy processes per condition")
    parser.add_argument("--out", default=None, help="default: reports/threads/<model>.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    settings = list(dict.fromkeys(t.strip() for t in args.threads.split(",")))
    if not all(t == AUTO or t.isdigit() and int(t) > 0 for t in settings):
        parser.error(f"--threads takes positive counts and/or {AUTO}, got {args.threads!r}")
    base = replace(RuntimeConfig.from_env(), adaptive_threads=False)
    if args.model:
        base = replace(base, model=args.model)
    questions = stratified(args.per_domain, split="eval")
    runtimes = setting_runtimes(base, settings)
    try:
        file = next(iter(runtimes.values())).model.file
        conditions = [
            condition(runtimes, questions, int(b), progress=not args.no_progress)
            for b in args.busy.split(",")
        ]
    finally:
        for runtime in runtimes.values():
            runtime.close()
    report = {
        "format": "foggen-threads",
        "version": 1,
        "model": file.reference,
        "model_sha256": file.sha256,
        "n_questions": len(questions),
        "git_commit": git_commit(),
        "machine": machine(),
        "conditions": conditions,
    }
    out = Path(args.out or f"reports/threads/{args.model or EMBEDDED_NAME}.json")
    write_json(out, report)
    for c in conditions:
        print(f"{c['busy_processes']} busy: median ms {c['median_ms']}, ratio to best "
              f"{c['ratio_to_best']}, letters differing {c['letters_differing']}")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
