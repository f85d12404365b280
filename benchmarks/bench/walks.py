"""Fast mode's walk with its guessed bucket against the walk without one, on the same questions.

The speculative decode changes llama.cpp's batch shapes, so letters and probabilities move by
float noise. This counts the letters and buckets that moved and, per routing signal, the
AUROC (each walk ranking its own answers) of both walks with the paired bootstrap SE of their
difference: a difference within about one SE is noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench.outcomes import Outcome, combine
from benchmarks.stats import auroc_se
from edge_runtime.config import NO_GUESS
from edge_runtime.routing import metrics
from edge_runtime.routing.passes import Pass, PassStore, fast_passes
from edge_runtime.runtime import EdgeRuntime

BOOTSTRAP = 1000


SIGNALS = ("bucket", "bucket_expectation", "letter")  # the one-pass routing scores


def compare_walks(
    runtime: EdgeRuntime, guessed: Sequence[Pass], *, home: Path, progress: bool = True
) -> dict[str, Any]:
    """``guessed``: the runtime's passes (with its guess). The walk without a guess runs on
    another context of the same weights, its passes cached under their own fingerprint."""
    reference = runtime.sibling(config=replace(runtime.config, guess=NO_GUESS))
    try:
        store = PassStore.for_runtime(reference, home)
        questions = [p.question for p in guessed]
        plain = fast_passes(
            reference, questions, store=store, progress=progress, desc="edge (no guess)"
        )
    finally:
        reference.close()
    return walk_difference(guessed, plain)


def walk_difference(guessed: Sequence[Pass], plain: Sequence[Pass]) -> dict[str, Any]:
    new = combine(guessed, [None] * len(guessed))  # no cloud: the edge pass's outcomes only
    old = combine(plain, [None] * len(plain))
    out: dict[str, Any] = {
        "n": len(new),
        "letters_moved": sum(a.local != b.local for a, b in zip(new, old, strict=True)),
        "buckets_moved": sum(a.bucket != b.bucket for a, b in zip(new, old, strict=True)),
        "correct": {
            "guess": sum(o.local_correct for o in new),
            "no_guess": sum(o.local_correct for o in old),
        },
        "auroc": {},
    }
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(new), size=(BOOTSTRAP, len(new)))
    for name in SIGNALS:
        a, b = _ranking(new, name), _ranking(old, name)
        out["auroc"][name] = None if a is None or b is None else _compared(a, b, draws)
    return out


Ranking = tuple[np.ndarray, np.ndarray]


def _compared(a: Ranking, b: Ranking, draws: np.ndarray) -> dict[str, Any] | None:
    """Both AUROCs, the first one's SE, and their difference with its paired bootstrap SE
    (None when either walk's answers are all right or all wrong)."""
    x, y = _auroc(*a), _auroc(*b)
    if x is None or y is None:
        return None
    deltas = [d for idx in draws if (d := _delta(a, b, idx)) is not None]  # one class: skipped
    se = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else float("nan")
    positives = int(a[1].sum())
    return {
        "guess": round(x, 4),
        "no_guess": round(y, 4),
        "se": round(auroc_se(x, positives=positives, negatives=len(a[1]) - positives), 4),
        "difference": round(x - y, 4),
        "difference_se": round(se, 4),
        "beyond_se": bool(abs(x - y) > se),
    }


def _ranking(outcomes: Sequence[Outcome], signal: str) -> Ranking | None:
    scores = [o.score(signal) for o in outcomes]
    if any(s is None for s in scores):
        return None
    labels = np.array([o.local_correct for o in outcomes])
    return np.array(scores, dtype=np.float64), labels


def _auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    return metrics.auroc(scores.tolist(), labels.tolist())


def _delta(a: Ranking, b: Ranking, idx: np.ndarray) -> float | None:
    x, y = _auroc(a[0][idx], a[1][idx]), _auroc(b[0][idx], b[1][idx])
    return None if x is None or y is None else x - y
