"""The calibrator: features, the numpy fit, the JSON format, refusals, and the real model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.decoding import EdgeResult
from edge_runtime.errors import (
    CalibratorFormatError,
    CalibratorMismatchError,
    CalibratorNotFoundError,
    ConfigError,
)
from edge_runtime.mcq import DOMAINS, stratified
from edge_runtime.model_setup import load_calibrator
from edge_runtime.models import ModelFile, ModelSource
from edge_runtime.question import make_question
from edge_runtime.routing.calibrator import (
    FEATURE_NAMES,
    Calibrator,
    calibrator_path,
    features,
    sigmoid,
)
from edge_runtime.routing.fit import (
    L2_GRID,
    choose_l2,
    cross_validated,
    design,
    fit_calibrator,
    fit_logistic,
    fit_model,
    observe,
)
from edge_runtime.routing.metrics import auroc, ece
from edge_runtime.routing.rule import Route, Signal
from edge_runtime.runtime import EdgeRuntime

SHA = "a" * 64
OTHER_SHA = "b" * 64
N_FEATURES = len(FEATURE_NAMES)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features (standard normal, then scaled and shifted) and labels from a known logistic
    model; returns x, labels, the true probabilities and the true standardised weights."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, N_FEATURES))
    true_w = np.zeros(N_FEATURES)
    true_w[:4] = [1.5, -1.0, 0.5, 2.0]
    p = sigmoid(z @ true_w - 0.3)
    x = z * 3.0 + 7.0  # raw features on another scale: standardisation must undo it
    return x, rng.random(n) < p, p, true_w


# -- fitting on data with a known answer -------------------------------------------------------
def test_fit_recovers_a_known_logistic_model() -> None:
    x, y, _, true_w = synthetic(20_000, seed=1)
    model = fit_model(x, y, model_sha256=SHA, l2=1.0)
    assert np.allclose(model.weights, true_w, atol=0.08)
    assert model.bias == pytest.approx(-0.3, abs=0.08)
    fresh_x, fresh_y, fresh_p, _ = synthetic(20_000, seed=2)
    predicted = model.predict(fresh_x)
    assert np.mean(np.abs(predicted - fresh_p)) < 0.02
    best = auroc(fresh_p.tolist(), fresh_y)  # the AUROC of the true model
    assert best is not None and 0.8 < best < 0.95
    assert auroc(predicted.tolist(), fresh_y) == pytest.approx(best, abs=0.005)
    calibration_error = ece(predicted.tolist(), fresh_y)
    assert calibration_error is not None and calibration_error < 0.02
    overconfident = ece((predicted > 0.5).astype(float).tolist(), fresh_y)
    assert overconfident is not None and overconfident > 0.1


def test_cross_validated_predictions_match_the_true_models_ranking() -> None:
    x, y, p, _ = synthetic(3_000, seed=3)
    out_of_fold = cross_validated(x, y, folds=5)
    assert auroc(out_of_fold.tolist(), y) == pytest.approx(auroc(p.tolist(), y), abs=0.02)
    calibrator = fit_calibrator(x, y, model_sha256=SHA, extra={"note": "synthetic"})
    assert calibrator.fit["n"] == 3_000 and calibrator.fit["split"] == "calib"
    assert calibrator.fit["auroc"] == pytest.approx(auroc(out_of_fold.tolist(), y))
    assert calibrator.fit["ece"] < 0.05 and calibrator.fit["note"] == "synthetic"


def test_uninformative_features_give_the_base_rate() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20_000, N_FEATURES)), rng.random(20_000) < 0.3
    predicted = fit_model(x, y, model_sha256=SHA).predict(x)
    assert predicted.mean() == pytest.approx(y.mean(), abs=1e-6)  # the intercept's score equation
    assert np.mean(np.abs(predicted - y.mean())) < 0.02


def test_the_penalty_is_chosen_by_cross_validated_log_loss() -> None:
    x, y, _, _ = synthetic(2_000, seed=7)
    strong, losses = choose_l2(x, y)
    assert strong <= 10.0 and losses[str(strong)] == min(losses.values())
    rng = np.random.default_rng(8)
    noise = rng.standard_normal((400, N_FEATURES))
    weak, _ = choose_l2(noise, rng.random(400) < 0.25)
    assert weak >= 100.0  # nothing to learn: shrink towards the base rate
    calibrator = fit_calibrator(noise, rng.random(400) < 0.25, model_sha256=SHA)
    assert calibrator.fit["l2"] in L2_GRID and set(calibrator.fit["l2_cv_log_loss"]) == {
        str(v) for v in L2_GRID
    }


def test_one_class_cannot_be_fitted() -> None:
    x = np.zeros((10, N_FEATURES))
    with pytest.raises(ValueError, match="both right and wrong"):
        fit_logistic(x, np.ones(10, dtype=bool))
    with pytest.raises(ValueError, match="at least 2 right and 2 wrong"):
        cross_validated(x, np.array([True] + [False] * 9))


# -- features ---------------------------------------------------------------------------------
def fast_result(letter_probs: dict[str, float]) -> EdgeResult:
    buckets = {"0.0": 0.1, "0.25": 0.2, "0.5": 0.3, "0.75": 0.4, "1.0": 0.0}
    letter = max(letter_probs, key=letter_probs.__getitem__)
    return EdgeResult(letter, "0.75", "", (), buckets, letter_probs, n_prompt_tokens=100)


def test_features_of_a_fast_pass() -> None:
    question = make_question("Q?", ["a", "b", "c", "d"], domain="law")
    x = features(fast_result({"A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1}), question, 100)
    named = dict(zip(FEATURE_NAMES, x.tolist(), strict=True))
    assert named["bucket_p_0.75"] == 0.4 and named["bucket_expectation"] == pytest.approx(0.5)
    assert named["letter_max"] == 0.6 and named["letter_margin"] == pytest.approx(0.4)
    entropy = -sum(p * math.log(p) for p in (0.1, 0.6, 0.2, 0.1)) / math.log(4)
    assert named["letter_entropy"] == pytest.approx(entropy)
    assert named["n_options"] == 4 and named["log_prompt_tokens"] == pytest.approx(math.log(100))
    assert [named[f"domain_{d}"] for d in DOMAINS] == [d == "law" for d in DOMAINS]


def test_uniform_letters_have_entropy_one_and_unknown_domains_no_one_hot() -> None:
    question = make_question("Q?", ["a", "b", "c"], domain="astrology")
    x = features(fast_result({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}), question, 50)
    named = dict(zip(FEATURE_NAMES, x.tolist(), strict=True))
    assert named["letter_entropy"] == pytest.approx(1.0) and named["letter_margin"] == 0.0
    assert not any(named[f"domain_{d}"] for d in DOMAINS)


def test_features_need_a_fast_pass_and_have_one_slot_per_bundled_domain() -> None:
    grammar_result = EdgeResult("A", "0.5", "Confidence: 0.5\nFinal answer: A", ())
    with pytest.raises(ValueError, match="fast-mode"):
        features(grammar_result, make_question("Q?", ["a", "b"]), 10)
    assert [n for n in FEATURE_NAMES if n.startswith("domain_")] == [f"domain_{d}" for d in DOMAINS]


# -- the JSON format and refusals -------------------------------------------------------------
@pytest.fixture
def calibrator() -> Calibrator:
    x, y, _, _ = synthetic(2_000, seed=5)
    return fit_calibrator(x, y, model_sha256=SHA)


def test_json_round_trip_gives_identical_predictions(
    calibrator: Calibrator, tmp_path: Path
) -> None:
    path = calibrator.save(tmp_path / "c.json")
    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["model_sha256"]) == ("foggen-calibrator", 1, SHA)
    assert data["feature_names"] == list(FEATURE_NAMES)
    assert {"n", "split", "auroc", "ece", "created_at", "git_commit"} <= set(data["fit"])
    loaded = Calibrator.load(path)
    x, _, _, _ = synthetic(500, seed=6)
    assert np.array_equal(loaded.predict(x), calibrator.predict(x))
    assert loaded.p_correct(x[0]) == calibrator.p_correct(x[0])
    assert loaded.fit == calibrator.fit


def test_a_calibrator_for_another_model_is_refused(calibrator: Calibrator, tmp_path: Path) -> None:
    calibrator.save(calibrator_path(tmp_path, OTHER_SHA))  # filed under the wrong name
    with pytest.raises(CalibratorMismatchError, match="foggen calibrator fit --model m.gguf"):
        Calibrator.for_model(OTHER_SHA, tmp_path, model_reference="m.gguf")
    assert Calibrator.for_model("c" * 64, tmp_path) is None
    with pytest.raises(CalibratorMismatchError) as caught:
        calibrator.check_model(OTHER_SHA)
    assert isinstance(caught.value, ConfigError) and caught.value.model_sha256 == OTHER_SHA


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda text: text[: len(text) // 2], "unreadable JSON"),
        (lambda text: text.replace('"version": 1', '"version": 9'), "version 9"),
        (lambda text: text.replace('"version": 1', '"version": 2'), "missing field .'hidden'"),
        (lambda text: text.replace("foggen-calibrator", "something-else"), "not a foggen"),
        (lambda text: text.replace('"letter_max"', '"letter_min"'), "features differ"),
        (lambda text: text.replace('"bias": ', '"bias": "x", "b": '), "bad or missing"),
        (lambda text: text.replace('"weights": [', '"weights": [NaN, '), "bad or missing"),
    ],
)
def test_a_corrupt_or_incompatible_file_is_refused(
    calibrator: Calibrator, tmp_path: Path, edit, reason: str
) -> None:  # noqa: ANN001
    path = calibrator.save(tmp_path / "c.json")
    path.write_text(edit(path.read_text()))
    with pytest.raises(CalibratorFormatError, match=reason) as caught:
        Calibrator.load(path)
    assert "foggen calibrator fit" in str(caught.value)


# -- which calibrator the runtime loads ---------------------------------------------------------
def model_file(sha256: str = SHA) -> ModelFile:
    return ModelFile(Path("/models/m.gguf"), sha256, ModelSource.PATH, "/models/m.gguf")


def test_runtime_loads_the_cached_one_a_path_or_none(
    calibrator: Calibrator, tmp_path: Path
) -> None:
    assert load_calibrator(RuntimeConfig(), model_file(), tmp_path) is None
    calibrator.save(calibrator_path(tmp_path, SHA))
    assert load_calibrator(RuntimeConfig(), model_file(), tmp_path) is not None
    assert load_calibrator(RuntimeConfig(calibrator="none"), model_file(), tmp_path) is None
    elsewhere = calibrator.save(tmp_path / "mine.json")
    config = RuntimeConfig(calibrator=str(elsewhere))
    assert load_calibrator(config, model_file(), tmp_path / "empty") is not None
    with pytest.raises(CalibratorMismatchError, match="--model /models/m.gguf"):
        load_calibrator(config, model_file(OTHER_SHA), tmp_path)
    with pytest.raises(ConfigError, match="calibrator file not found"):
        load_calibrator(
            RuntimeConfig(calibrator=str(tmp_path / "nope.json")), model_file(), tmp_path
        )


def test_signal_calibrated_without_a_calibrator_fails_at_load(tmp_path: Path) -> None:
    config = RuntimeConfig(signal=Signal.CALIBRATED)
    with pytest.raises(CalibratorNotFoundError, match="foggen calibrator fit --model"):
        load_calibrator(config, model_file(), tmp_path)
    with pytest.raises(ConfigError, match="'none'"):
        RuntimeConfig(signal=Signal.CALIBRATED, calibrator="none")


# -- the real model -----------------------------------------------------------------------------
@pytest.mark.slow
def test_end_to_end_fit_and_routing_on_p_correct(runtime: EdgeRuntime, tmp_path: Path) -> None:
    questions = stratified(4, split="calib")
    observations = observe(runtime, questions, progress=False)
    x, y = design(observations)
    assert x.shape == (28, N_FEATURES) and np.all(np.isfinite(x))
    assert all(
        o.result.n_prompt_tokens == len(runtime.prompt_tokens(o.question)) for o in observations
    )
    sha = runtime.model.file.sha256
    fitted = fit_calibrator(x, y, model_sha256=sha, folds=2)
    assert fitted.fit["n"] == 28 and fitted.fit["n_correct"] == int(y.sum())
    loaded = Calibrator.load(fitted.save(tmp_path / "cal.json"))
    calibrated = EdgeRuntime(runtime.engine, runtime.model, runtime.config, calibrator=loaded)
    question = questions[0]
    record = calibrated.answer(question, signal=Signal.CALIBRATED, tau=0.0)
    assert record.p_correct == pytest.approx(loaded.p_correct(observations[0].x))
    assert record.signal == "calibrated" and record.score == record.p_correct
    assert record.route is Route.LOCAL
    # any signal: p_correct is still filled in (another question in between: asking the same
    # question twice in a row reuses its KV cache, which moves the probabilities a little)
    bucket = calibrated.answer(questions[1])
    assert bucket.signal == "bucket" and bucket.score == bucket.confidence
    assert bucket.p_correct == pytest.approx(loaded.p_correct(observations[1].x))
    above = calibrated.answer(
        question, signal=Signal.CALIBRATED, tau=min(1.0, record.p_correct + 0.01)
    )
    assert above.route is Route.CLOUD and above.p_correct == pytest.approx(record.p_correct)
    assert calibrated.answer(question, mode=Mode.GRAMMAR).p_correct is None
    with pytest.raises(ConfigError, match="--signal calibrated"):
        runtime.answer(question, signal=Signal.CALIBRATED)  # the shared runtime has none


@pytest.mark.slow
def test_cli_fit_then_ask_with_signal_calibrated(cli_env: dict[str, str], tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "foggen"]
    out = tmp_path / "cal.json"
    fit = subprocess.run(
        [*cli, "calibrator", "fit", "--limit", "2", "--out", str(out), "--json", "--no-progress"],
        env=cli_env, capture_output=True, timeout=600,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)["n"] == 14 and Calibrator.load(out).fit["split"] == "calib"
    ask = [*cli, "ask", "2 + 2 = ?", "-c", "3", "-c", "4", "--json", "--signal", "calibrated"]
    # no fit of one's own: the calibrator the package ships for the embedded model
    shipped = subprocess.run(ask, env=cli_env, capture_output=True, timeout=600)
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout)["p_correct_version"] == 2
    asked = subprocess.run(
        [*ask, "--calibrator", str(out)], env=cli_env, capture_output=True, timeout=600
    )
    assert asked.returncode == 0, asked.stderr
    record = json.loads(asked.stdout)
    assert record["signal"] == "calibrated" and 0.0 < record["p_correct"] < 1.0
    assert record["score"] == record["p_correct"]
