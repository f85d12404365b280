"""`make labels`: fast passes over every bundled question outside eval, with every layer read.

python -m benchmarks.labels [--model NAME] [--splits train,calib] [--limit N] [--threads N]
python -m benchmarks.labels --model NAME --splits eval --measure   (eval: measured on, never fitted)

For each question of the splits (train + calib: 4,766 questions; never eval) one fast pass,
as the runtime answers it, with each layer's output captured at the row where the letter is
read and at the last token of the user's message (``edge_runtime.capture``: the capture
changes no number of the pass). The pass rows go to the pass store, the layer states to the
state store (``edge_runtime.routing.states``), both under ``$FOGGEN_HOME``. Questions run in a
fixed shuffled order (a hash of each question), so a run stopped early is still a random,
stratifiable sample; a run resumes after the last chunk written, and ``--start N`` labels the
rest of the order after the N questions a committed compact run already holds. Run it niced:
the 1.5B takes 1.1-1.5 s a question on two cores, about two hours for the lot.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from tqdm import tqdm

from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.config import Mode, RuntimeConfig, foggen_home
from edge_runtime.mcq import DOMAINS, SPLITS, load_questions
from edge_runtime.question import Question
from edge_runtime.routing.passes import Pass, PassStore, question_key, settings_fingerprint
from edge_runtime.routing.states import StateStore, states_path
from edge_runtime.runtime import EdgeRuntime

DEFAULT_SPLITS = ("train", "calib")


def labelled_questions(splits: Sequence[str], *, measure: bool = False) -> list[Question]:
    """Every question of ``splits`` in a fixed order shuffled by a hash; eval only to
    ``measure`` (the probes are fitted on train and calib, never on eval)."""
    if "eval" in splits and not measure:
        raise SystemExit("labels: eval is measured on, never fitted on - choose train, calib")
    questions = [q for split in splits for d in DOMAINS for q in load_questions(d, split)]
    return sorted(questions, key=lambda q: hashlib.sha256(question_key(q).encode()).hexdigest())


def state_store(runtime: EdgeRuntime) -> StateStore:
    """The state store of this runtime's model and pass settings."""
    sha256 = runtime.model.file.sha256
    return StateStore(states_path(foggen_home(), sha256, settings_fingerprint(runtime)))


def run(
    runtime: EdgeRuntime,
    questions: Sequence[Question],
    *,
    progress: bool = True,
    stop: threading.Event | None = None,
) -> tuple[StateStore, int]:
    """Label every question the state store lacks (until ``stop`` is set, checked between
    questions); returns the store and how many ran. ``runtime`` must capture the final state
    and every layer."""
    states = state_store(runtime)
    passes = PassStore.for_runtime(runtime, foggen_home())
    layers = runtime.engine.captures_layers
    missing = [q for q in questions if q not in states]
    bar = tqdm(missing, desc="labels", unit="q", file=sys.stderr, disable=not progress)
    ran = 0
    try:
        for question in bar:
            if stop is not None and stop.is_set():
                break
            started = time.perf_counter()
            result = runtime.run_edge(question, mode=Mode.FAST, hidden=True)
            edge_ms = (time.perf_counter() - started) * 1000.0
            passes.add(Pass(question, result, edge_ms, cached=False))
            states.add(question, result, layers)
            ran += 1
    finally:
        states.flush()
    return states, ran


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMBEDDED_NAME, help="a catalog name or a GGUF path")
    parser.add_argument("--splits", default=",".join(DEFAULT_SPLITS), help="train,calib")
    parser.add_argument("--limit", type=int, default=None, help="the first N of the order")
    parser.add_argument(
        "--start", type=int, default=0, metavar="N",
        help="skip the first N of the order (a committed compact run holds them)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measure", action="store_true", help="allow eval (to measure probes)")
    args = parser.parse_args(argv)
    splits = [s for s in args.splits.split(",") if s]
    if any(s not in SPLITS for s in splits):
        parser.error(f"--splits: choose from {', '.join(SPLITS)}")
    if args.start < 0 or (args.limit is not None and args.limit < args.start):
        parser.error("--start: 0 <= N <= --limit")
    questions = labelled_questions(splits, measure=args.measure)[args.start : args.limit]
    config = replace(RuntimeConfig.from_env(), model=args.model, n_threads=args.threads)
    with EdgeRuntime.load(config, capture_hidden=True) as loaded:
        runtime = loaded.sibling(
            capture_hidden=True, capture_layers=tuple(range(loaded.engine.n_layer))
        )
    # Ctrl-C or SIGTERM (a background job ignores SIGINT) stops after the question in flight,
    # the pending states flushed: an exception raised inside llama.cpp's graph callback would
    # fail that pass instead of stopping the run
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with runtime:
        states, ran = run(runtime, questions, stop=stop)
    print(f"labels: {ran} passes run, {len(states)} stored in {states.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
