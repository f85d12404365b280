"""`make limits`: fast mode against its two limits, and against the walk without a guess.

python -m benchmarks.limits [--model NAME] [--per-domain N] [--threads N]

After the cached system prompt, per question: the **question limit** (the question's own tokens,
one row of logits), the **schema limit** (the question and the emitted response up to the
letter in one decode, logits at its choice points), ``fast`` (the guessed bucket's response in
the question's decode), ``fast_hidden`` (with the hidden-state capture), ``fast_no_guess``
(a decode per choice point: the walk before the guess) and ``fast_probe`` (with the capture of
the layers a version-3 calibrator reads, when the model's profile loads one), in an order
rotating per question,
each setting a context of its own on the same weights, fixed threads. Reported: medians and
their ratios over all questions and the short ones (<= 80 question tokens), the guess's hit
rate, and the letters that differ between the walks. Times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.bench.speed import Timed, fast_and_limits, limit_ratios
from benchmarks.report import machine, write_json
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.config import NO_GUESS, Mode, RuntimeConfig
from edge_runtime.mcq import DOMAINS, stratified
from edge_runtime.provenance import git_commit
from edge_runtime.runtime import EdgeRuntime

RUNS = ("question_limit", "schema_limit", "fast", "fast_hidden", "fast_no_guess")  # timed
RATIOS = (
    ("fast", "schema_limit"),
    ("fast", "question_limit"),
    ("fast_no_guess", "schema_limit"),
    ("fast", "fast_no_guess"),
    ("fast_hidden", "fast"),
    ("fast_probe", "fast"),
)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = limit_ratios(rows, [(a, b) for a, b in RATIOS if f"{a}_ms" in rows[0]])
    out["guess_hit_rate"] = round(sum(bool(r["fast_guess_hit"]) for r in rows) / len(rows), 4)
    out["letters_differing"] = {
        "fast_no_guess": sum(r["fast_letter"] != r["fast_no_guess_letter"] for r in rows),
        "fast_hidden": sum(r["fast_letter"] != r["fast_hidden_letter"] for r in rows),
    }
    return out


def measure(
    runtime: EdgeRuntime,
    per_domain: int,
    *,
    progress: bool,
    domains: tuple[str, ...] = DOMAINS,
) -> dict[str, Any]:
    """Every run on a context of its own beside ``runtime`` (the weights are shared):
    ``fast_hidden`` with the final state's capture, ``fast_probe`` (when the runtime's
    calibrator is a layer probe) with the capture of the probe's layers only."""
    questions = stratified(per_domain, split="eval", domains=domains)
    contexts = {
        "plain": runtime.sibling(capture_hidden=False, capture_layers=()),
        "hidden": runtime.sibling(capture_hidden=True, capture_layers=()),
        "fast_no_guess": runtime.sibling(
            config=replace(runtime.config, guess=NO_GUESS), capture_hidden=False, capture_layers=()
        ),
    }
    layers = runtime.calibrator.layers if runtime.calibrator is not None else ()
    if layers:
        contexts["fast_probe"] = runtime.sibling(capture_hidden=False, capture_layers=layers)
    try:
        rows = []
        for n, q in enumerate(tqdm(questions, desc="limits", unit="q", disable=not progress)):
            more: Timed = {  # the runs beside fast and fast_hidden, each on its own context
                name: (context, functools.partial(context.run_edge, q, mode=Mode.FAST))
                for name, context in contexts.items()
                if name.startswith("fast_")
            }
            rows.append(fast_and_limits(contexts["hidden"], contexts["plain"], q, n, more=more))
    finally:
        for context in contexts.values():
            context.close()
    file = runtime.model.file
    return {
        "format": "foggen-limits",
        "version": 1,
        "model": file.reference,
        "model_sha256": file.sha256,
        "guess": runtime.guess,
        "threads": runtime.engine.n_threads,
        "n_questions": len(questions),
        "git_commit": git_commit(),
        "machine": machine(),
        "summary": summarise(rows),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a named model (default: the embedded)")
    parser.add_argument("--per-domain", type=int, default=6, help="eval questions per domain")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (fixed)")
    parser.add_argument("--out", default=None, help="default: reports/limits/<model>.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.per_domain <= 0 or args.threads <= 0:
        parser.error("--per-domain and --threads must be positive")
    config = replace(RuntimeConfig.from_env(), n_threads=args.threads, adaptive_threads=False)
    if args.model:
        config = replace(config, model=args.model)
    with EdgeRuntime.load(config, capture_hidden=True) as runtime:
        report = measure(runtime, args.per_domain, progress=not args.no_progress)
    write_json(Path(args.out or f"reports/limits/{args.model or EMBEDDED_NAME}.json"), report)
    summary = report["summary"]
    for label in ("all", "short"):
        if label in summary:
            print(f"{label} (n={summary[label]['n']}): {summary[label]['ratios']}")
    print(f"guess hit rate {summary['guess_hit_rate']}, letters differing "
          f"{summary['letters_differing']}")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
