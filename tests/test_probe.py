"""Calibrator version 3: a probe of chosen layers, fitted on a real label run, folded exactly,
round-tripped through its file, refused for another model, and applied by the runtime and by
`foggen ask` to the layers the same pass captured."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.labels import labelled_questions, run
from benchmarks.probes.compact import load_compact, save_compact
from benchmarks.probes.data import LabelRun, load_label_run
from benchmarks.probes.sweep import learning_curve
from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.errors import CalibratorFormatError, CalibratorMismatchError
from edge_runtime.routing.calibrator import FEATURE_NAMES, Calibrator, features
from edge_runtime.routing.fit_probe import Setting, fit_setting, out_of_fold, to_calibrator
from edge_runtime.routing.probe import Read
from edge_runtime.routing.rule import Signal
from edge_runtime.runtime import EdgeRuntime

N_QUESTIONS = 24
READS = (Read(9, "question"), Read(12, "letter"))


@pytest.fixture(scope="module")
def label_run(layered_runtime: EdgeRuntime, model_home: Path) -> Iterator[LabelRun]:
    """A small label run of the embedded model (every layer read) in the test session's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOGGEN_HOME", str(model_home))
        run(layered_runtime, labelled_questions(["calib"])[:N_QUESTIONS], progress=False)
        yield load_label_run(layered_runtime, ["calib"])


def states_of(label_run: LabelRun, reads: tuple[Read, ...]) -> list[np.ndarray]:
    return [label_run.data.states[r] for r in reads]


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_the_folded_calibrator_is_the_fitted_probe(label_run: LabelRun, kind: str) -> None:
    assert len(label_run.data.y) == N_QUESTIONS and 0 < label_run.data.y.sum() < N_QUESTIONS
    setting = Setting(READS, kind=kind, k=4, l2=10.0, hidden=3)
    fitted = fit_setting(label_run.data, setting)
    calibrator = to_calibrator(fitted, model_sha256="ab" * 32, fit={"n": N_QUESTIONS})
    assert calibrator.version == 3 and calibrator.layers == (9, 12)
    expected = fitted.predict(label_run.data)
    got = calibrator.predict(label_run.data.x, states=states_of(label_run, READS))
    assert np.allclose(got, expected, rtol=0, atol=1e-9)
    assert not np.allclose(got, got.mean())  # it ranks: the rows do not all get one number
    oof = out_of_fold(label_run.data, [setting], folds=3)[setting]
    assert oof.shape == (N_QUESTIONS,) and np.all((oof > 0) & (oof < 1))


def test_v3_files_round_trip_and_refuse_another_model(label_run: LabelRun, tmp_path: Path) -> None:
    fitted = fit_setting(label_run.data, Setting(READS, kind="mlp", k=4, hidden=3))
    sha = "cd" * 32
    path = to_calibrator(fitted, model_sha256=sha, fit={"n": 1}).save(tmp_path / "v3.json")
    data = json.loads(path.read_text())
    assert data["version"] == 3 and data["domain_fallback"] == "mean"
    reads = [(r["layer"], r["position"]) for r in data["probe"]["reads"]]
    assert reads == [(9, "question"), (12, "letter")]
    loaded = Calibrator.load(path)
    states = states_of(label_run, READS)
    got = loaded.predict(label_run.data.x, states=states)
    assert np.allclose(got, fitted.predict(label_run.data), rtol=0, atol=1e-12)
    with pytest.raises(CalibratorMismatchError):
        Calibrator.checked_at(path, "ef" * 32)
    with pytest.raises(ValueError, match="reads layer states"):
        loaded.predict(label_run.data.x)
    broken = dict(data, probe=dict(data["probe"], weights=[[1.0]]))
    with pytest.raises(CalibratorFormatError, match="bad or missing field"):
        Calibrator.from_dict(broken)


def test_a_question_without_a_domain_reads_as_the_mean_domain(label_run: LabelRun) -> None:
    calibrator = to_calibrator(
        fit_setting(label_run.data, Setting(READS, k=4)), model_sha256="ab" * 32, fit={}
    )
    x = label_run.data.x[:1].copy()
    domains = [i for i, n in enumerate(FEATURE_NAMES) if n.startswith("domain_")]
    unknown = x.copy()
    unknown[:, domains] = 0.0
    at_mean = x.copy()
    at_mean[:, domains] = calibrator.mean[domains]
    states = [s[:1] for s in states_of(label_run, READS)]
    assert calibrator.predict(unknown, states=states) == pytest.approx(
        calibrator.predict(at_mean, states=states), abs=1e-12
    )


def test_the_runtime_and_foggen_ask_apply_a_v3_calibrator_to_the_pass(
    label_run: LabelRun, runtime: EdgeRuntime, model_home: Path, cli_env: dict[str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    sha = runtime.model.file.sha256
    fitted = fit_setting(label_run.data, Setting(READS, k=4))
    path = to_calibrator(fitted, model_sha256=sha, fit={"n": N_QUESTIONS}).save(tmp_path / "c.json")
    config = RuntimeConfig(
        calibrator=str(path), signal=Signal.CALIBRATED, n_threads=runtime.config.n_threads
    )
    question = label_run.questions[0]
    with EdgeRuntime.load(config, home=model_home) as probed:
        assert probed.engine.captures_layers == (9, 12) and not probed.engine.captures_hidden
        record = probed.answer(question)
        result = probed.run_edge(question, mode=Mode.FAST)
    assert record.p_correct_version == 3 and record.score == record.p_correct
    assert result.layers is not None
    calibrator = Calibrator.load(path)
    x = features(result, question, result.n_prompt_tokens or 0)
    live = [result.layers["question"][0], result.layers["letter"][1]]  # layers 9, 12 captured
    assert record.p_correct == pytest.approx(calibrator.p_correct(x, states=live), abs=1e-12)
    first = [s[0] for s in states_of(label_run, READS)]
    stored = calibrator.p_correct(label_run.data.x[0], states=first)
    assert record.p_correct == pytest.approx(stored, abs=0.01)  # the stored states are float16
    # a probe of a layer the model does not have is refused at load, with the reason
    far = json.loads(path.read_text())
    far["probe"]["reads"][0]["layer"] = 99
    (tmp_path / "far.json").write_text(json.dumps(far))
    with pytest.raises(CalibratorFormatError, match="layer 99"):
        EdgeRuntime.load(replace(config, calibrator=str(tmp_path / "far.json")), home=model_home)
    # the CLI: the same record from `foggen ask`
    ask = [sys.executable, "-m", "foggen", "ask", question.text, "--calibrator", str(path)]
    ask += [a for c in question.choices for a in ("-c", c)]
    ask += ["--domain", str(question.domain), "--json", "--signal", "calibrated"]
    asked = subprocess.run(ask, env=cli_env, capture_output=True, timeout=600)
    assert asked.returncode == 0, asked.stderr
    printed = json.loads(asked.stdout)
    assert printed["p_correct_version"] == 3
    assert printed["p_correct"] == pytest.approx(record.p_correct, abs=1e-9)


@pytest.mark.slow
def test_the_knowledgeable_tier_ships_a_v3_calibrator_and_routes_on_its_profile(
    qwen_runtime: EdgeRuntime, cli_env: dict[str, str]
) -> None:
    from edge_runtime.routing.calibrator import shipped_calibrator
    from edge_runtime.routing.profile import find_profile

    sha256 = qwen_runtime.model.file.sha256
    shipped = shipped_calibrator(sha256)
    assert shipped is not None and shipped.version == 3 and shipped.fit["n"] >= 3000
    found = find_profile("auto", sha256)
    assert found is not None
    profile = found[0]
    question = labelled_questions(["calib"])[1]
    ask = [sys.executable, "-m", "foggen", "ask", question.text, "--model", "qwen2.5-coder-1.5b"]
    ask += [a for c in question.choices for a in ("-c", c)]
    ask += ["--domain", str(question.domain), "--json"]
    by_default = subprocess.run(ask, env=cli_env, capture_output=True, timeout=600)
    assert by_default.returncode == 0, by_default.stderr
    record = json.loads(by_default.stdout)
    assert record["profile"] == f"{profile.name}/cloud-50"
    assert record["signal"] == profile.signal.value
    assert record["tau"] == profile.table().tau_for(question.domain)
    chosen = subprocess.run(
        [*ask, "--signal", "calibrated", "--tau", "0.5"], env=cli_env, capture_output=True,
        timeout=600,
    )  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    explicit = json.loads(chosen.stdout)
    assert explicit["profile"] is None and explicit["p_correct_version"] == 3
    assert explicit["local_answer"] == record["local_answer"]


def test_a_setting_and_a_read_parse_back_from_their_labels() -> None:
    from edge_runtime.routing.fit_probe import DOMAIN_COLUMNS

    for setting in (
        Setting((Read(25, "letter"),), l2=100.0),
        Setting((Read(4, "letter"), Read(15, "question")), kind="mlp", k=128, l2=1.0),
        Setting(columns=DOMAIN_COLUMNS, l2=1000.0),
    ):
        assert Setting.parse(setting.label()) == setting
    assert Read.parse(" question@15") == Read(15, "question")
    for bad in ("letter@x", "nowhere@3", "linear letter@25; outputs"):
        with pytest.raises(ValueError):
            Setting.parse(bad) if ";" in bad else Read.parse(bad)


def test_profile_taus_send_the_share_overall_and_more_where_the_cloud_is_better() -> None:
    from benchmarks.probes.profile import gain_taus

    rng = np.random.default_rng(0)
    scores = rng.random(2000)
    domains = ["math", "kazakh"] * 1000
    taus = gain_taus(scores, domains, 0.5, {"math": 0.6, "kazakh": 0.95})
    sent = np.mean([s < taus[d]["tau"] for s, d in zip(scores, domains, strict=True)])
    assert abs(sent - 0.5) < 0.01
    assert taus["kazakh"]["tau"] - taus["math"]["tau"] == pytest.approx(0.35, abs=1e-5)
    assert taus["kazakh"]["cloud_fraction"] > 0.6 > 0.4 > taus["math"]["cloud_fraction"]


def _part(label_run: LabelRun, rows: slice) -> LabelRun:
    index = np.arange(len(label_run.questions))[rows]
    return LabelRun(
        label_run.questions[rows], label_run.data.subset(index), label_run.layers,
        label_run.letter_max[rows], label_run.bucket[rows],
    )  # fmt: skip


def test_a_run_committed_in_chunks_reads_back_as_one(label_run: LabelRun, tmp_path: Path) -> None:
    first, rest = _part(label_run, slice(0, 14)), _part(label_run, slice(14, None))
    a = save_compact(first, READS, tmp_path / "a.npz")
    b = save_compact(rest, READS, tmp_path / "b.npz", bases_from=a)
    alone, whole = load_compact(a), load_compact([a, b])
    assert whole.questions == label_run.questions and whole.layers == (9, 12)  # the reads kept
    assert np.array_equal(whole.data.y, label_run.data.y)
    assert np.allclose(whole.data.x, label_run.data.x, rtol=1e-6)  # float32 on disk
    assert np.allclose(whole.letter_max, label_run.letter_max, rtol=1e-6)
    for read in READS:  # the first chunk's states are its rank-14 reconstruction, kept as is
        assert whole.data.states[read].shape == label_run.data.states[read].shape
        assert np.array_equal(whole.data.states[read][:14], alone.data.states[read])
        scale = np.abs(label_run.data.states[read][:14]).max()
        assert (
            np.abs(alone.data.states[read] - label_run.data.states[read][:14]).max() < 1e-2 * scale
        )
    with pytest.raises(SystemExit, match="two chunks"):
        load_compact([a, a])
    with np.load(b) as data:  # the second chunk names the first's bases instead of copying them
        assert "basis_0" not in data and str(data["bases_of"]) == "a.npz"
    a.write_bytes(a.read_bytes() + b"\0")
    with pytest.raises(SystemExit, match="a.npz changed since b.npz"):
        load_compact([a, b])
    a.unlink()
    with pytest.raises(SystemExit, match="a.npz, not found beside it"):
        load_compact(b)


def test_a_compact_runs_learning_curve_reads_its_kept_reads_in_the_sweeps_bands(
    label_run: LabelRun, tmp_path: Path
) -> None:
    """Bands come from the model's depth (the sweep's layers), not from the few layers a compact
    run keeps; each band's curve reads the best read the run holds."""
    compact = load_compact(save_compact(label_run, READS, tmp_path / "a.npz"))
    sweep = [  # the best of every band is a read the compact run does not keep
        {
            "layer": layer,
            "position": position,
            "l2": 10.0,
            "auroc": 0.9 if layer in (3, 8, 15) else 0.6,
        }
        for layer in range(18)
        for position in ("question", "letter")
    ]
    curve = learning_curve(compact, sweep, lambda _: None)
    assert {band: c["read"] for band, c in curve.items()} == {
        "middle": "question@9",  # 18 layers: early 0-6, middle 7-11, late 12-17
        "late": "letter@12",
    }
