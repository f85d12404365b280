"""The labelled passes of a label run: output features, labels and every layer's states."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from benchmarks.labels import labelled_questions, state_store
from edge_runtime.config import RuntimeConfig, foggen_home
from edge_runtime.decoding import POSITIONS
from edge_runtime.question import Question
from edge_runtime.routing.calibrator import features
from edge_runtime.routing.fit_probe import Labelled
from edge_runtime.routing.passes import PassStore
from edge_runtime.routing.probe import Read
from edge_runtime.runtime import EdgeRuntime


def report_name(reference: str) -> str:
    """A model reference as a file name in the reports (``chain:3`` -> ``chain-3``)."""
    return reference.replace(":", "-").replace("/", "-")


@contextmanager
def label_runtime(model: str) -> Iterator[EdgeRuntime]:
    """``model`` loaded to read its label runs: no calibrator, no capture."""
    config = replace(RuntimeConfig.from_env(), model=model, calibrator="none")
    with EdgeRuntime.load(config, capture_hidden=False) as runtime:
        yield runtime


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
    found = [
        (q, item.result)
        for q in labelled_questions(splits, measure=measure)
        if q in states and (item := passes.get(q)) is not None
    ]
    if not found:
        raise SystemExit(f"probes: no labelled passes in {states.directory}: run make labels")
    questions = [q for q, _ in found]
    x = np.array([features(r, q, r.n_prompt_tokens or 1) for q, r in found], dtype=np.float64)
    y = np.array([r.letter == q.answer for q, r in found])
    letter_max = np.array([max((r.letter_probs or {"": 0.0}).values()) for _, r in found])
    bucket = np.array([float(r.bucket or 0.0) for _, r in found])
    layers = states.layers or ()
    by_read: dict[Read, np.ndarray] = {}
    for position in POSITIONS:
        block = states.read(questions, position, layers)  # (n, layers, width)
        for column, layer in enumerate(layers):
            if not np.isnan(block[0, column, 0]):  # the last layer has no question-end state
                by_read[Read(layer, position)] = np.ascontiguousarray(block[:, column])
    hidden = None
    if all(r.hidden is not None for _, r in found):
        hidden = np.array([r.hidden for _, r in found], dtype=np.float32)
    return LabelRun(questions, Labelled(x, y, by_read), layers, letter_max, bucket, hidden)
