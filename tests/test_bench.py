"""`foggen bench` end to end on the real model (tiny), its report, and the tau file."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks.bench.config import BenchConfig
from benchmarks.bench.run import run_bench, write_report
from benchmarks.bench.tau import recommend
from benchmarks.bench.transformers_baseline import StopTokens, run_baseline, stop_tokens
from benchmarks.errors import BaselineModelError, BenchConfigError, BenchFileError
from edge_runtime.errors import TauTableError
from edge_runtime.mcq import stratified
from edge_runtime.routing.rule import Route, Signal
from edge_runtime.routing.taus import TauTable
from edge_runtime.runtime import EdgeRuntime
from tests.threads import TEST_THREADS

FOGGEN = [sys.executable, "-m", "foggen"]
DOMAINS = ("math", "science")  # the shortest questions: law and medical are ~4x longer


@pytest.fixture(scope="module")
def bench_dir(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = BenchConfig(domains=DOMAINS, per_domain=3, small_per_domain=1, threads=TEST_THREADS,
                         cold_start=False, progress=False, compare_walks=True)  # fmt: skip
    report = run_bench(config, home=model_home)
    out = tmp_path_factory.mktemp("bench")
    write_report(report, out)
    return out


@pytest.fixture
def report(bench_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bench_dir / "bench.json").read_text())
    return data


def test_the_run_writes_markdown_json_and_plots(bench_dir: Path) -> None:
    names = {p.name for p in bench_dir.iterdir()}
    assert {"bench.json", "bench.md", "tau-sweep.png", "reliability.png", "latency.png",
            "risk-coverage.png"} <= names  # fmt: skip
    for png in bench_dir.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_without_a_small_subset_the_report_has_no_latency_plot(
    report: dict[str, Any], tmp_path: Path
) -> None:
    """--small 0: no per-mode latency to draw; the other plots and the report are written."""
    for model in report["models"]:
        model["speed"]["small_subset_latency_ms"] = {}
    written = {p.name for p in write_report(report, tmp_path)}
    assert written == {"bench.json", "bench.md", "tau-sweep.png", "reliability.png",
                       "risk-coverage.png"}  # fmt: skip
    assert json.loads((tmp_path / "bench.json").read_text())["plots"] == [
        "tau-sweep.png", "reliability.png", "risk-coverage.png"
    ]  # fmt: skip


def test_card_table_follows_from_the_per_question_outcomes(
    report: dict[str, Any], runtime: EdgeRuntime
) -> None:
    model = report["models"][0]
    assert model["sha256"] == runtime.model.file.sha256
    rows = model["questions"]
    assert [r["domain"] for r in rows] == ["math"] * 3 + ["science"] * 3
    for domain in DOMAINS:
        mine = [r for r in rows if r["domain"] == domain]
        row = model["card"][domain]
        routed = [r for r in mine if r["bucket"] is None or r["bucket"] < 0.5]
        system = sum(r["cloud_correct"] if r in routed else r["local_correct"] for r in mine)
        assert row["edge_raw"] == round(100 * sum(r["local_correct"] for r in mine) / 3, 1)
        assert row["cloud_only"] == round(100 * sum(r["cloud_correct"] for r in mine) / 3, 1)
        assert row["routed_fraction"] == round(len(routed) / 3, 3)
        assert row["foggen_at_tau"] == round(100 * system / 3, 1)
        p = len(routed) / 3
        random = p * row["cloud_only"] + (1 - p) * row["edge_raw"]
        assert row["random_at_tau"] == pytest.approx(random, abs=0.11)
    mean = model["card"]["mean"]
    assert mean["edge_raw"] == pytest.approx(
        (model["card"]["math"]["edge_raw"] + model["card"]["science"]["edge_raw"]) / 2, abs=0.06
    )


def test_report_carries_provenance_calibration_and_speed(report: dict[str, Any]) -> None:
    assert report["cloud"] == {"label": "simulated cloud", "simulated": True,
                               "configured_accuracy_percent": report["cloud"]
                               ["configured_accuracy_percent"]}  # fmt: skip
    assert report["machine"]["threads_used"] == TEST_THREADS and "git_commit" in report
    model = report["models"][0]
    assert model["calibration"]["bucket"]["ece"] is not None
    assert model["calibration"]["calibrated"] is None  # no calibrator for the embedded model
    assert sum(model["calibration"]["bucket_histogram"].values()) == 6
    assert len(model["sweeps"]["letter"]["tau_sweep"]) == 21
    speed = model["speed"]
    assert speed["fast"]["n"] == 6 and speed["fast"]["questions_per_s"] > 0
    modes = {"floor", "question_limit", "schema_limit", "fast", "fast_hidden", "grammar", "free"}
    assert set(speed["small_subset_latency_ms"]) == modes
    ratios = speed["ratios_of_medians"]
    assert ratios["grammar / fast"] > 0 and ratios["fast_hidden / fast"] > 0
    # the limits are measured beside fast (times, never asserted beyond being there)
    assert ratios["fast / schema_limit"] > 0 and ratios["fast / question_limit"] > 0
    assert speed["limits"]["all"]["n"] == 2
    # every pass guessed a bucket and says whether it was emitted
    assert 0.0 <= speed["fast"]["guess_hit_rate"] <= 1.0
    assert 1.0 <= speed["fast"]["decodes_per_question"] <= 3.0
    # the walk without a guess on the same questions: what moved, and each signal's AUROCs
    walks = model["walks"]
    assert walks["n"] == 6 and 0 <= walks["letters_moved"] <= 6
    for name in ("bucket", "bucket_expectation", "letter"):
        row = walks["auroc"][name]
        assert row is None or (
            0.0 <= row["guess"] <= 1.0 and 0.0 <= row["no_guess"] <= 1.0 and row["se"] >= 0
        )
    # every signal the passes allow (the hidden one needs --calib), RouteLLM's metrics for each
    assert set(model["routellm"]) == {"bucket", "bucket_expectation", "letter"}
    for r in model["routellm"].values():
        assert all(r[k] is None or 0.0 <= r[k] <= 1.0 for k in ("cpt50", "cpt80"))
    assert speed["engine"]["prompt_eval_tokens_per_s"] > 0
    assert "no --hf-checkpoint" in speed["transformers"]["skipped"]
    assert model["format_compliance"]["n"] == 2


def test_markdown_starts_with_the_card_table(bench_dir: Path) -> None:
    text = (bench_dir / "bench.md").read_text()
    first_table = text[text.index("| Domain") :].split("\n\n")[0].splitlines()
    assert "Cloud only†" in first_table[0] and "Lift" in first_table[0]
    assert [line.split("|")[1].strip() for line in first_table[2:]] == [
        "math",
        "science",
        "**Mean**",
    ]
    assert "Simulated cloud" in text and "Ratios of medians" in text


def test_tau_recommend_writes_a_file_the_runtime_loads(
    report: dict[str, Any], runtime: EdgeRuntime, tmp_path: Path
) -> None:
    table = recommend(report, signal=Signal.LETTER, target={"cloud_fraction": 0.5})
    assert set(table["domains"]) == set(DOMAINS)
    assert table["global"]["tau"] in {0.0, *(r["letter"] for r in report["models"][0]["questions"])}
    path = tmp_path / "taus.json"
    path.write_text(json.dumps(table))
    loaded = TauTable.load(path)
    assert (
        loaded.signal is Signal.LETTER and loaded.tau_for("math") == table["domains"]["math"]["tau"]
    )
    with pytest.raises(BenchFileError, match="no 'calibrated' scores"):
        recommend(report, signal=Signal.CALIBRATED, target={"cloud_fraction": 0.5})


def _tau_file(path: Path, sha: str, *, signal: str = "bucket", **changes: Any) -> Path:
    data = {"format": "foggen-taus", "version": 1, "model_sha256": sha, "signal": signal,
            "target": {"cloud_fraction": 0.5}, "global": {"tau": 1.0},
            "domains": {"math": {"tau": 0.0}}, **changes}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_per_domain_taus_route_each_domain(runtime: EdgeRuntime, tmp_path: Path) -> None:
    path = _tau_file(tmp_path / "t.json", runtime.model.file.sha256)
    with_taus = EdgeRuntime(
        runtime.engine, runtime.model, replace(runtime.config, tau_file=str(path))
    )
    math_q, law_q = stratified(1, domains=("math", "law"))
    math_record, law_record = with_taus.answer(math_q), with_taus.answer(law_q)
    assert (math_record.tau, math_record.route) == (0.0, Route.LOCAL)  # every score >= 0
    assert law_record.tau == 1.0  # the global tau: only a score of exactly 1.0 keeps it local
    assert law_record.route is (Route.LOCAL if law_record.score == 1.0 else Route.CLOUD)
    assert with_taus.answer(law_q, tau=0.0).route is Route.LOCAL  # the call's tau wins


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_sha256": "0" * 64}, "was made for model 000000000000"),
        ({"signal": "letter"}, "--signal letter"),
        ({"version": 9}, "version 9 is not supported"),
        ({"global": {}}, "malformed tau file"),
        ({"format": "other"}, "not a FogGen tau file"),
    ],
)
def test_unusable_tau_files_are_refused(
    runtime: EdgeRuntime, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    args = {"signal": changes.pop("signal")} if "signal" in changes else {}
    path = _tau_file(tmp_path / "t.json", runtime.model.file.sha256, **args, **changes)
    with pytest.raises(TauTableError, match=message):
        EdgeRuntime(runtime.engine, runtime.model, replace(runtime.config, tau_file=str(path)))


def test_cli_tau_recommend_then_ask(
    bench_dir: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "taus.json"
    rec = subprocess.run(FOGGEN + ["tau", "recommend", "--bench", str(bench_dir / "bench.json"),
                                   "--target-cloud-fraction", "0.3", "--out", str(out)],
                         env=cli_env, capture_output=True, timeout=120)  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    assert b"global: tau" in rec.stdout and out.is_file()
    ask = subprocess.run(FOGGEN + ["ask", "--tau-file", str(out), "--json", "--domain", "math",
                                   "What is 2 + 2?", "-c", "3", "-c", "4", "-c", "5"],
                         env=cli_env, capture_output=True, timeout=300)  # fmt: skip
    assert ask.returncode == 0, ask.stderr
    assert json.loads(ask.stdout)["tau"] == json.loads(out.read_text())["domains"]["math"]["tau"]
    both = subprocess.run(FOGGEN + ["ask", "--tau", "0.3", "--tau-file", str(out), "Q?",
                                    "-c", "a", "-c", "b"], env=cli_env, capture_output=True,
                          timeout=120)  # fmt: skip
    assert both.returncode == 2 and b"not both" in both.stderr


def test_bad_bench_settings_are_usage_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = subprocess.run(FOGGEN + ["bench", "--domains", "astrology"], env=cli_env,
                         capture_output=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and b"unknown domain(s) astrology" in bad.stderr
    missing = subprocess.run(FOGGEN + ["tau", "recommend", "--bench", str(tmp_path / "no.json"),
                                       "--target-accuracy", "0.6"], env=cli_env,
                             capture_output=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and b"run 'foggen bench'" in missing.stderr
    with pytest.raises(BenchConfigError, match="--limit"):
        BenchConfig(per_domain=0)


def test_transformers_baseline_is_fed_the_runtime_s_prompt_tokens(
    hf_checkpoint: Path, runtime: EdgeRuntime
) -> None:
    question = stratified(1, domains=("math",))
    result = run_baseline(hf_checkpoint, runtime, question, threads=TEST_THREADS, progress=False)
    (row,) = result["rows"]
    assert row["prompt_tokens"] == len(runtime.prompt_tokens(question[0]))
    assert result["dtype"] == "bfloat16" and result["load_ms"] > 0
    assert 1 <= row["new_tokens"] <= 64 and row["ms"] > 0
    assert isinstance(row["strict"], bool) and isinstance(row["lenient"], bool)


def _checkpoint(generation: dict[str, Any], config: dict[str, Any]) -> SimpleNamespace:
    """The two fields of a transformers model that stop_tokens reads."""
    return SimpleNamespace(
        generation_config=SimpleNamespace(**generation), config=SimpleNamespace(**config)
    )


def test_the_baseline_stops_where_the_checkpoint_and_the_runtime_say() -> None:
    gemma = _checkpoint({"eos_token_id": [1, 106], "pad_token_id": 0}, {"eos_token_id": 1})
    assert stop_tokens(gemma, end_of_turn="<end_of_turn>", end_of_turn_ids=[106]) == StopTokens(
        stop=(1, 106), pad=0
    )
    # a generation config without them: the model config's; the end of turn is added once
    bare = _checkpoint({}, {"eos_token_id": 1, "pad_token_id": 0})
    assert stop_tokens(bare, end_of_turn="<end_of_turn>", end_of_turn_ids=[106]) == StopTokens(
        stop=(1, 106), pad=0
    )
    chatml = _checkpoint({"eos_token_id": 151645, "pad_token_id": 151643}, {})
    assert stop_tokens(chatml, end_of_turn="<|im_end|>", end_of_turn_ids=[151645]) == StopTokens(
        stop=(151645,), pad=151643
    )
    no_pad = _checkpoint({"eos_token_id": [128001, 128009]}, {"pad_token_id": None})
    with pytest.raises(BaselineModelError, match="no pad_token_id"):
        stop_tokens(no_pad, end_of_turn="<|eot_id|>", end_of_turn_ids=[128009])
    with pytest.raises(BaselineModelError, match="no eos_token_id"):
        stop_tokens(_checkpoint({"pad_token_id": 0}, {}), end_of_turn="<eos>", end_of_turn_ids=[1])
    with pytest.raises(BaselineModelError, match="'</turn>' is 3 tokens"):
        stop_tokens(gemma, end_of_turn="</turn>", end_of_turn_ids=[1, 2, 3])


def test_two_models_are_labelled_and_put_side_by_side(report: dict[str, Any]) -> None:
    from benchmarks.bench.markdown import render
    from benchmarks.bench.run import _label_models

    twin = {**report, "models": [dict(report["models"][0]), dict(report["models"][0])]}
    twin["models"][1]["spec"] = "/models/q8.gguf"
    twin["models"][1]["path"] = "/models/q8.gguf"
    _label_models(twin["models"])
    assert [m["label"] for m in twin["models"]] == ["embedded", "q8"]
    text = render(twin)
    table = text[text.index("## Models side by side") :].split("\n\n")[1].splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == ["embedded", "q8"]
    assert text.count("| Domain | n |") == 2  # each model keeps its own card table
    accuracy = text[text.index("### Raw accuracy per domain") :].split("\n\n")[1].splitlines()
    assert accuracy[0] == "| Domain | embedded | q8 |"
    assert [row.split("|")[1].strip() for row in accuracy[2:]] == [*DOMAINS, "**Mean**"]


@pytest.fixture(scope="module")
def calib_report(model_home: Path) -> dict[str, Any]:
    from edge_runtime.catalog import named_model
    from edge_runtime.models import fetch_named

    smollm2 = named_model("smollm2-135m")
    assert smollm2 is not None
    fetch_named(smollm2, home=model_home)
    config = BenchConfig(models=("smollm2-135m",), domains=DOMAINS, per_domain=4,
                         calib_per_domain=20, small_per_domain=0, threads=TEST_THREADS,
                         cold_start=False, progress=False)  # fmt: skip
    return run_bench(config, home=model_home)


@pytest.mark.slow
def test_with_calib_the_taus_and_the_calibrator_come_from_calib(
    calib_report: dict[str, Any],
) -> None:
    model = calib_report["models"][0]
    assert calib_report["settings"]["n_calib"] == 40
    assert model["calibrator_fit"]["n"] == 40 and model["calibrator_fit"]["split"] == "calib"
    eval_ids = {q["id"] for q in model["questions"]}
    assert len(eval_ids) == 8
    points = model["calib_operating_points"]
    assert {"letter", "calibrated"} <= set(points)
    for signal, by_target in points.items():
        for target, p in by_target.items():
            scores = [q[signal] for q in model["questions"]]
            routed = sum(s is None or s < p["tau"] for s in scores) / len(scores)
            assert p["eval"]["cloud_fraction"] == pytest.approx(routed), (signal, target)
    assert all(q["calibrated"] is not None for q in model["questions"])


def test_a_second_bench_reads_every_pass_from_the_cache(
    calib_report: dict[str, Any], model_home: Path
) -> None:
    config = BenchConfig(models=("smollm2-135m",), domains=DOMAINS, per_domain=4,
                         calib_per_domain=20, small_per_domain=0, threads=TEST_THREADS,
                         cold_start=False, progress=False)  # fmt: skip
    again = run_bench(config, home=model_home)["models"][0]
    first = calib_report["models"][0]
    assert again["passes"]["cached"] == 8 and again["passes"]["calib_cached"] == 40
    assert [q["local"] for q in again["questions"]] == [q["local"] for q in first["questions"]]
    assert again["calib_operating_points"] == first["calib_operating_points"]
