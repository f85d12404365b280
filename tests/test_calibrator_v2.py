"""The version-2 calibrator: the hidden-state fit, its folded file format, version 1 files still
loading, the typed refusals, the shuffled-label sanity check, and fit -> ask -> route for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.errors import CalibratorFormatError, CalibratorHiddenSizeError
from edge_runtime.mcq import stratified
from edge_runtime.routing.calibrator import FEATURE_NAMES, Calibrator, features, shipped_path
from edge_runtime.routing.fit import design, fit_calibrator, hidden_design, observe
from edge_runtime.routing.fit_hidden import (
    _fit,
    fit_hidden_calibrator,
    fold_into_calibrator,
    principal_projection,
)
from edge_runtime.routing.metrics import auroc
from edge_runtime.routing.rule import Route, Signal
from edge_runtime.runtime import EdgeRuntime

SHA = "c" * 64
N_FEATURES = len(FEATURE_NAMES)
WIDTH = 96


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uninformative features and hidden states whose correctness lies along a few directions
    (on their own scale and offset, as a model's states are)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES)) * 2.0 + 5.0
    latent = rng.standard_normal((n, 3))
    mixing = np.random.default_rng(0).standard_normal((3, WIDTH))  # one "model" for all seeds
    hidden = latent @ mixing * 4.0 + rng.standard_normal((n, WIDTH)) + 30.0
    p = 1.0 / (1.0 + np.exp(-(2.0 * latent[:, 0] - 1.5 * latent[:, 1])))
    return x, hidden, rng.random(n) < p


def test_the_hidden_state_ranks_where_the_features_cannot() -> None:
    x, hidden, y = synthetic(600, seed=1)
    x_test, hidden_test, y_test = synthetic(600, seed=2)
    v2 = fit_hidden_calibrator(x, hidden, y, model_sha256=SHA)
    assert v2.needs_hidden and v2.version == 2 and v2.hidden_size == WIDTH
    assert v2.fit["auroc"] > 0.8 and v2.fit["components"] >= 2
    assert auroc(v2.predict(x_test, hidden_test).tolist(), y_test) > 0.8
    v1 = fit_calibrator(x, y, model_sha256=SHA)
    assert not v1.needs_hidden and v1.version == 1
    assert abs(auroc(v1.predict(x_test).tolist(), y_test) - 0.5) < 0.1


def test_a_probe_fitted_on_shuffled_labels_is_flat() -> None:
    x, hidden, y = synthetic(600, seed=3)
    x_test, hidden_test, y_test = synthetic(600, seed=4)
    shuffled = np.random.default_rng(0).permutation(y)
    probe = fit_hidden_calibrator(x, hidden, shuffled, model_sha256=SHA)
    assert abs(auroc(probe.predict(x_test, hidden_test).tolist(), y_test) - 0.5) < 0.08
    # cross-validation sees nothing either, and picks the strongest shrinkage or few components
    assert abs(probe.fit["auroc"] - 0.5) < 0.1


def test_folding_the_projection_changes_no_prediction() -> None:
    x, hidden, y = synthetic(300, seed=5)
    model = _fit(x, hidden, y, principal_projection(hidden, 16), l2=1.0)
    folded = fold_into_calibrator(model, model_sha256=SHA, fit={})
    np.testing.assert_allclose(folded.predict(x, hidden), model.predict(x, hidden), rtol=1e-9)


def test_version_2_round_trip_and_refusals(tmp_path: Path) -> None:
    x, hidden, y = synthetic(200, seed=6)
    v2 = fit_hidden_calibrator(x, hidden, y, model_sha256=SHA, components=8, l2=1.0)
    path = v2.save(tmp_path / "v2.json")
    data = json.loads(path.read_text())
    assert data["version"] == 2 and data["hidden"]["size"] == WIDTH
    assert data["hidden"]["position"] == "letter" and data["fit"]["components"] == 8
    loaded = Calibrator.load(path)
    np.testing.assert_allclose(loaded.predict(x, hidden), v2.predict(x, hidden), rtol=1e-12)
    with pytest.raises(ValueError, match="hidden state"):
        loaded.predict(x)
    loaded.check_hidden_size(WIDTH)
    with pytest.raises(CalibratorHiddenSizeError, match="640.*foggen calibrator fit"):
        loaded.check_hidden_size(640)
    for change, reason in (
        ({"version": 4}, "this runtime reads 1, 2 and 3"),
        ({"hidden": {**data["hidden"], "position": "prompt"}}, "not 'letter'"),
        ({"hidden": {**data["hidden"], "size": 5}}, "for a size of 5"),
        ({"hidden": {**data["hidden"], "weights": [float("nan")] * WIDTH}}, "finite"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**data, **change}))
        with pytest.raises(CalibratorFormatError, match=reason):
            Calibrator.load(bad)


def test_a_version_1_file_still_loads_and_applies(tmp_path: Path) -> None:
    """A file exactly as the previous runtime wrote it (no hidden section, version 1)."""
    x, _, y = synthetic(200, seed=7)
    v1 = fit_calibrator(x, y, model_sha256=SHA)
    data = v1.to_dict()
    assert data["version"] == 1 and "hidden" not in data
    legacy = {k: data[k] for k in ("format", "version", "model_sha256", "feature_names",
                                   "weights", "bias", "mean", "std", "fit")}  # fmt: skip
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(legacy))
    loaded = Calibrator.load(path)
    assert loaded.version == 1 and not loaded.needs_hidden
    np.testing.assert_allclose(loaded.predict(x), v1.predict(x), rtol=1e-12)
    loaded.check_hidden_size(640)  # reads no hidden state: any width goes


# -- the real model -----------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_then_ask_and_route_on_the_hidden_state(
    cli_env: dict[str, str], runtime: EdgeRuntime, tmp_path: Path
) -> None:
    cli = [sys.executable, "-m", "foggen"]
    out = tmp_path / "cal.json"
    fit = subprocess.run(
        [*cli, "calibrator", "fit", "--limit", "3", "--out", str(out), "--json", "--no-progress"],
        env=cli_env, capture_output=True, timeout=600,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    meta = json.loads(fit.stdout)
    assert meta["n"] == 21 and meta["signal"] == "hidden"
    loaded = Calibrator.load(out)
    assert loaded.hidden_size == runtime.engine.n_embd
    # the printed AUROC is the cross-validated one of these very passes: refit them here
    observed = observe(runtime, stratified(3, split="calib"), progress=False)
    x, y = design(observed)
    assert meta["n_correct"] == int(y.sum())
    refit = fit_hidden_calibrator(x, hidden_design(observed), y, model_sha256=loaded.model_sha256)
    assert meta["auroc"] == pytest.approx(refit.fit["auroc"], abs=1e-9)

    question = stratified(1, split="eval")[0]
    ask = [*cli, "ask", question.text, *(a for c in question.choices for a in ("-c", c))]
    ask += ["--json", "--signal", "calibrated", "--calibrator", str(out)]
    asked = subprocess.run(ask, env=cli_env, capture_output=True, timeout=600)
    assert asked.returncode == 0, asked.stderr
    record = json.loads(asked.stdout)
    assert record["schema_version"] == 5 and record["p_correct_version"] == 2
    assert record["signal"] == "calibrated" and record["score"] == record["p_correct"]
    # the same pass in this process: the record's p_correct is the calibrator's on its state
    result = runtime.run_edge(question, mode=Mode.FAST, hidden=True)
    assert result.letter == record["local_answer"]
    n_tokens = len(runtime.prompt_tokens(question))
    expected = loaded.p_correct(features(result, question, n_tokens), result.hidden)
    assert record["p_correct"] == pytest.approx(expected, abs=0.02)
    # routing on it: a tau just above p_correct escalates, at p_correct it stays local
    calibrated = EdgeRuntime(runtime.engine, runtime.model, runtime.config, calibrator=loaded)
    assert calibrated.reads_hidden
    kept = calibrated.answer(question, signal=Signal.CALIBRATED, tau=0.0)
    assert kept.route is Route.LOCAL and kept.p_correct_version == 2
    escalated = calibrated.answer(
        question, signal=Signal.CALIBRATED, tau=min(1.0, kept.p_correct + 0.01)
    )
    assert escalated.route is Route.CLOUD


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gemma-3-270m", "smollm2-135m", "qwen2.5-coder-1.5b"])
def test_named_models_ship_a_hidden_state_calibrator(name: str) -> None:
    """Each named model ships a calibrator that reads its states: the final hidden state
    (version 2, fitted on calib) or, after `make probes`, a layer probe (version 3, fitted on
    train + calib)."""
    from edge_runtime.catalog import require_named

    entry = require_named(name)
    shipped = Calibrator.load(shipped_path(entry.sha256))
    assert shipped.model_sha256 == entry.sha256
    if shipped.version == 3:
        assert shipped.layers and "train" in shipped.fit["split"] and shipped.fit["n"] >= 3000
    else:
        assert shipped.needs_hidden
        assert shipped.fit["split"] == "calib" and shipped.fit["n"] >= 400


def test_signal_calibrated_loads_the_shipped_calibrator(model_home: Path) -> None:
    """Without a fit of one's own, --signal calibrated finds the package's; a fit overrides it."""
    from edge_runtime.model_setup import load_calibrator
    from edge_runtime.models import resolve_model
    from edge_runtime.routing.calibrator import calibrator_path

    file = resolve_model(None, home=model_home)
    calibrated = RuntimeConfig(signal=Signal.CALIBRATED)
    shipped = load_calibrator(calibrated, file, model_home)
    assert shipped is not None and shipped.needs_hidden
    assert load_calibrator(RuntimeConfig(), file, model_home) is None  # bucket: nothing loaded
    x, _, y = synthetic(100, seed=8)
    own = fit_calibrator(x, y, model_sha256=file.sha256)
    path = own.save(calibrator_path(model_home, file.sha256))
    try:
        mine = load_calibrator(calibrated, file, model_home)
        assert mine is not None and not mine.needs_hidden
    finally:
        path.unlink()


def test_tau_files_of_the_calibrated_signal_name_their_calibrator_version() -> None:
    from benchmarks.bench.tau import recommend
    from edge_runtime.errors import TauTableError
    from edge_runtime.routing.taus import TauTable

    rows = [
        {"domain": "math", "local_correct": i % 3 == 0, "cloud_correct": True,
         "calibrated": i / 40, "hidden": (i % 7) / 7}
        for i in range(40)
    ]  # fmt: skip
    bench = {"models": [{"label": "m", "sha256": SHA, "questions": rows}], "settings": {}}
    table = recommend(bench, signal=Signal.CALIBRATED, target={"cloud_fraction": 0.5})
    assert table["p_correct_version"] == 2  # the hidden-state column when the bench has it
    taus = TauTable.from_dict(table)
    taus.check(model_sha256=SHA, signal=Signal.CALIBRATED, origin="t", p_correct_version=2)
    with pytest.raises(TauTableError, match="calibrator version 2.*version 1"):
        taus.check(model_sha256=SHA, signal=Signal.CALIBRATED, origin="t", p_correct_version=1)
    for row in rows:
        row["hidden"] = None
    older = recommend(bench, signal=Signal.CALIBRATED, target={"cloud_fraction": 0.5})
    assert older["p_correct_version"] == 1


def test_a_hidden_calibrator_of_another_width_is_refused_at_load(
    model_home: Path, tmp_path: Path
) -> None:
    from edge_runtime.models import resolve_model

    file = resolve_model(None, home=model_home)
    x, hidden, y = synthetic(200, seed=9)
    wrong = fit_hidden_calibrator(x, hidden, y, model_sha256=file.sha256, components=4, l2=1.0)
    path = wrong.save(tmp_path / "wide.json")
    with pytest.raises(CalibratorHiddenSizeError, match="96 numbers but this model's has 640"):
        EdgeRuntime.load(RuntimeConfig(calibrator=str(path)), home=model_home)
