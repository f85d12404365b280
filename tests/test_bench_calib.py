"""Taus chosen on calib and applied to eval, and the lift's standard error (no model)."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.bench.calib import calib_operating_points, lift_standard_error
from benchmarks.bench.outcomes import Outcome


def _outcomes(n: int, seed: int, *, informative: bool) -> list[Outcome]:
    """Letter scores that rank correct answers first (informative) or say nothing."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        score = rng.random()
        right = rng.random() < (score if informative else 0.5)
        rows.append(
            Outcome(
                id=f"q{i}",
                domain=("math", "law")[i % 2],
                gold="A",
                local="A" if right else "B",
                cloud="A" if rng.random() < 0.8 else "C",
                edge_ms=1.0,
                prompt_tokens=100,
                bucket=0.5,
                bucket_expectation=0.5,
                letter=score,
                calibrated=None,
            )
        )
    return rows


def test_taus_come_from_calib_and_route_about_the_target_on_eval() -> None:
    calib, evaluation = _outcomes(400, 1, informative=True), _outcomes(400, 2, informative=True)
    points = calib_operating_points(calib, evaluation)
    assert set(points) == {"bucket", "bucket_expectation", "letter"}  # calibrated: all None
    for target in ("0.70", "0.50"):
        letter = points["letter"][target]
        assert letter["calib_cloud_fraction"] == pytest.approx(float(target), abs=0.01)
        # the same tau on another sample of the same distribution routes about as much
        assert letter["eval"]["cloud_fraction"] == pytest.approx(float(target), abs=0.08)
        assert letter["eval"]["lift"] > 3 * letter["eval_lift_se"] / 100
        assert letter["card"]["mean"]["routed_fraction"] == pytest.approx(
            letter["eval"]["cloud_fraction"], abs=0.02
        )
    # a constant bucket cannot split the questions: it routes all or nothing
    assert points["bucket"]["0.50"]["eval"]["cloud_fraction"] in (0.0, 1.0)


def test_an_uninformative_signal_has_a_lift_within_its_standard_errors() -> None:
    calib, evaluation = _outcomes(600, 3, informative=False), _outcomes(600, 4, informative=False)
    point = calib_operating_points(calib, evaluation)["letter"]["0.50"]
    assert abs(100 * point["eval"]["lift"]) < 3 * point["eval_lift_se"]


def test_lift_standard_error_by_hand() -> None:
    scores = [0.9, 0.8, 0.2, 0.1]
    local = [True, False, False, True]
    cloud = [True, True, True, False]
    # tau 0.5 keeps the first two: routed correctness [1, 0, 1, 0]; f = 0.5;
    # random's expectation per question 0.5 * cloud + 0.5 * local = [1, .5, .5, .5]
    diff = [0.0, -0.5, 0.5, -0.5]
    mean = sum(diff) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in diff) / 3)
    assert lift_standard_error(scores, local, cloud, 0.5) == pytest.approx(round(100 * sd / 2, 2))
    assert lift_standard_error([0.5], [True], [True], 0.5) is None


def _passes(n: int, seed: int) -> list:
    """Fast passes whose correctness lies along a direction of the hidden state only."""
    import numpy as np

    from edge_runtime.decoding import EdgeResult
    from edge_runtime.question import make_question
    from edge_runtime.routing.passes import Pass

    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(0).standard_normal(64)
    items = []
    for i in range(n):
        latent = rng.standard_normal()
        right = rng.random() < 1.0 / (1.0 + math.exp(-2.5 * latent))
        letters = rng.dirichlet(np.ones(4))
        question = make_question(
            f"q{i}?", ["w", "x", "y", "z"], id=f"q{seed}-{i}", domain="math", answer="A"
        )
        result = EdgeResult(
            letter="A" if right else "B", bucket="0.5", output="", response_tokens=(),
            bucket_probs={"0.0": 0.1, "0.25": 0.2, "0.5": 0.4, "0.75": 0.2, "1.0": 0.1},
            letter_probs=dict(zip("ABCD", letters.tolist(), strict=True)), n_prompt_tokens=90,
            hidden=(latent * direction + rng.standard_normal(64)).astype(np.float32),
        )  # fmt: skip
        items.append(Pass(question, result, edge_ms=1.0, cached=True))
    return items


def test_the_hidden_calibrator_and_its_shuffled_label_check() -> None:
    from benchmarks.bench.calib import calibrated_scores
    from edge_runtime.routing.metrics import auroc

    calib, evaluation = _passes(400, 1), _passes(400, 2)
    scores = calibrated_scores(calib, evaluation, model_sha256="d" * 64)
    labels = [p.result.letter == p.question.answer for p in evaluation]
    assert set(scores.evaluation) == {"calibrated", "hidden"} and len(scores.calib["hidden"]) == 400
    hidden = auroc(scores.evaluation["hidden"], labels)
    calibrated = auroc(scores.evaluation["calibrated"], labels)
    assert hidden is not None and calibrated is not None
    assert hidden > 0.75 and abs(calibrated - 0.5) < 0.1
    assert scores.fits["hidden"]["signal"] == "hidden"
    shuffled = scores.shuffled
    assert shuffled is not None and len(shuffled["eval_auroc"]) == shuffled["n"] >= 10
    assert abs(shuffled["eval_auroc_mean"] - 0.5) < 3 * shuffled["eval_auroc_sd"] / 20**0.5 + 0.02
    assert shuffled["real_eval_auroc"] == hidden and shuffled["real_above_fraction"] == 1.0
    # without hidden states (an older pass) only the version-1 calibrator is fitted
    for item in calib:
        object.__setattr__(item.result, "hidden", None)
    assert set(calibrated_scores(calib, evaluation, model_sha256="d" * 64).evaluation) == {
        "calibrated"
    }
