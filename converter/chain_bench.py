"""Bench one chain checkpoint on the eval split: what the routing signal is worth.

Fast mode (the product's decoding) on ``per_domain`` eval questions per domain gives raw
accuracy and the bucket as the score (AUROC, ECE); the simulated cloud's per-question
correctness (``benchmarks.simulated_cloud.AnswerBook``, the card's cloud accuracies) gives the
system accuracy and the lift over random routing at tau. Free mode on a smaller subset gives
zero-shot format compliance (strict / lenient). All metrics come from ``benchmarks.metrics``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.data import DOMAINS, stratified
from benchmarks.metrics import accuracy, auroc, ece, operating_point
from benchmarks.simulated_cloud import AnswerBook, SimulatedCloudConfig
from converter.train_config import BenchConfig  # noqa: F401 (re-exported)
from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.runtime import EdgeRuntime


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def bench_gguf(
    gguf: Path, config: BenchConfig, *, home: Path, progress: bool = True
) -> dict[str, Any]:
    """Metrics of one GGUF (see the module docstring), with the question ids used."""
    questions = stratified(config.per_domain, split="eval")
    free_questions = stratified(config.free_per_domain, split="eval")
    if not config.free_per_domain:
        free_questions = []
    book = AnswerBook.bundled(SimulatedCloudConfig())
    runtime = EdgeRuntime.load(
        RuntimeConfig(model=str(gguf), n_threads=config.threads, n_ctx=2048), home=home
    )
    started = time.perf_counter()
    scores: list[float | None] = []
    local: list[bool] = []
    cloud: list[bool] = []
    letters: dict[str, int] = {}
    try:
        for q in tqdm(questions, desc="bench fast", unit="q", disable=not progress):
            result = runtime.run_edge(q, mode=Mode.FAST)
            scores.append(result.confidence)
            local.append(result.letter == q.answer)
            cloud.append(bool(book.reply(q.text, q.choices).correct))
            letters[result.letter or "-"] = letters.get(result.letter or "-", 0) + 1
        fast_seconds = time.perf_counter() - started
        strict = lenient = 0
        for q in tqdm(free_questions, desc="bench free", unit="q", disable=not progress):
            result = runtime.run_edge(q, mode=Mode.FREE)
            strict += result.strict
            lenient += result.lenient
    finally:
        runtime.close()
    point = operating_point(scores, local, cloud, config.tau)
    buckets: dict[str, int] = {}
    for s in scores:
        buckets[str(s)] = buckets.get(str(s), 0) + 1
    return {
        "gguf_sha256": runtime.model.file.sha256,
        "n_questions": len(questions),
        "domains": list(DOMAINS),
        "raw_accuracy": _round(accuracy(local)),
        "cloud_accuracy_simulated": _round(accuracy(cloud)),
        "auroc": _round(auroc(scores, local)),
        "ece": _round(ece([s if s is not None else 0.0 for s in scores], local)),
        "at_tau": {k: _round(v) for k, v in asdict(point).items()},
        "bucket_counts": buckets,
        "letter_counts": letters,
        "free_n": len(free_questions),
        "free_strict": _round(strict / len(free_questions)) if free_questions else None,
        "free_lenient": _round(lenient / len(free_questions)) if free_questions else None,
        "seconds": round(time.perf_counter() - started, 1),
        "fast_seconds": round(fast_seconds, 1),
    }
