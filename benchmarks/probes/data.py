"""The labelled passes of a label run: output features, labels and every layer's states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.labels import labelled_questions, state_store
from edge_runtime.config import foggen_home
from edge_runtime.decoding import POSITIONS
from edge_runtime.question import Question
from edge_runtime.routing.calibrator import features
from edge_runtime.routing.fit_probe import Labelled
from edge_runtime.routing.passes import PassStore
from edge_runtime.routing.probe import Read
from edge_runtime.runtime import EdgeRuntime


@dataclass(frozen=True)
class LabelRun:
    """What a label run stored for one model, as arrays (one row per question)."""

    questions: list[Question]
    data: Labelled
    layers: tuple[int, ...]
    letter_max: np.ndarray  # the raw letter probability (a one-pass signal, unfitted)
    bucket: np.ndarray  # the emitted confidence bucket (the card's signal)
    hidden: np.ndarray | None = None  # the final hidden state at the letter (version 2's read)

    @property
    def domains(self) -> list[str]:
        return [q.domain or "" for q in self.questions]


def load_label_run(
    runtime: EdgeRuntime, splits: Sequence[str] = ("train", "calib"), *, measure: bool = False
) -> LabelRun:
    """Every question of ``splits`` whose states are stored (in the run's fixed order); eval
    only to ``measure``."""
    states = state_store(runtime)
    passes = PassStore.for_runtime(runtime, foggen_home())
    questions = [
        q for q in labelled_questions(splits, measure=measure) if q in states and passes.get(q)
    ]
    if not questions:
        raise SystemExit(f"probes: no labelled passes in {states.directory}: run make labels")
    results = [passes.get(q) for q in questions]
    x = np.array(
        [
            features(p.result, q, p.result.n_prompt_tokens or 1)
            for p, q in zip(results, questions, strict=True)
            if p
        ],
        dtype=np.float64,
    )
    y = np.array(
        [p.result.letter == q.answer for p, q in zip(results, questions, strict=True) if p]
    )
    letter_max = np.array(
        [max((p.result.letter_probs or {"": 0.0}).values()) for p in results if p]
    )
    bucket = np.array([float(p.result.bucket or 0.0) for p in results if p])
    layers = states.layers or ()
    by_read: dict[Read, np.ndarray] = {}
    for position in POSITIONS:
        block = states.read(questions, position, layers)  # (n, layers, width)
        for column, layer in enumerate(layers):
            if not np.isnan(block[0, column, 0]):  # the last layer has no question-end state
                by_read[Read(layer, position)] = np.ascontiguousarray(block[:, column])
    hidden = None
    if all(p is not None and p.result.hidden is not None for p in results):
        hidden = np.array([p.result.hidden for p in results if p], dtype=np.float32)
    return LabelRun(questions, Labelled(x, y, by_read), layers, letter_max, bucket, hidden)
