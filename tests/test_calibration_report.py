"""The calibration report's arithmetic, on stored passes with known properties (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.calibration_report import SIGNALS, interleaved, measure, passes
from edge_runtime.mcq import DOMAINS
from edge_runtime.question import Question
from edge_runtime.schema import BUCKETS


def store_rows(path: Path, split: str, questions: list[Question], seed: int) -> None:
    """Passes whose letter max-prob says how likely the letter is the gold one."""
    rng = np.random.default_rng(seed)
    with path.open("a", encoding="utf-8") as handle:
        for q in questions:
            n = len(q.choices)
            top = rng.uniform(1.0 / n, 1.0)
            letters = [chr(65 + i) for i in range(n)]
            right = rng.random() < top
            assert q.answer is not None
            letter = q.answer if right else next(x for x in letters if x != q.answer)
            rest = (1.0 - top) / (n - 1)
            row = {
                "key": f"{split}:{q.id}",
                "letter": letter,
                "bucket": "0.5",
                "bucket_probs": dict.fromkeys(BUCKETS, 0.2),
                "letter_probs": {x: top if x == letter else rest for x in letters},
                "n_prompt_tokens": 200,
            }
            handle.write(json.dumps(row) + "\n")


def test_report_from_stored_passes(tmp_path: Path) -> None:
    store = tmp_path / "passes.jsonl"
    calib_questions, eval_questions = interleaved("calib", 40), interleaved("eval", 20)
    assert [q.domain for q in calib_questions[:7]] == list(DOMAINS)  # round-robin
    store_rows(store, "calib", calib_questions, seed=1)
    store_rows(store, "eval", eval_questions[:-5], seed=2)  # an interrupted run: 5 missing
    evaluation = passes(None, "eval", eval_questions, store)
    calib = passes(None, "calib", calib_questions, store)
    assert len(evaluation) == len(eval_questions) - 5 and len(calib) == len(calib_questions)
    report = measure(calib, evaluation, "a" * 64)
    signals = report["eval"]["signals"]
    assert set(signals) == set(SIGNALS)
    assert signals["bucket"]["auroc"] == 0.5 and signals["bucket"]["distinct_values"] == 1
    assert signals["letter_max"]["auroc"] > 0.6 and signals["calibrated"]["auroc"] > 0.6
    assert signals["calibrated"]["ece"] < 0.15
    for name in ("letter_max", "calibrated"):
        routed = signals[name]["route_70"]["tau_from_eval"]["cloud_fraction"]
        assert routed == pytest.approx(0.7, abs=0.02)
        assert signals[name]["route_50"]["tau_from_calib"]["cloud_fraction"] == pytest.approx(
            0.5, abs=0.15
        )
    assert report["calibrator"]["fit"]["split"] == "calib"
    assert set(report["eval"]["per_domain"]) == set(DOMAINS)
