"""The quantization ladder end to end on SmolLM2-135M with two rungs and a handful of questions:
real export, real quantization, real bench passes, the calibrator transfer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.ladder.__main__ import main
from benchmarks.ladder.analysis import paired_shift_se
from benchmarks.ladder.markdown import safe_rungs
from edge_runtime.gguf_check import inspect_gguf
from tests.threads import TEST_THREADS


@pytest.mark.slow
def test_two_rung_ladder(model_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGGEN_HOME", str(model_home))
    out = tmp_path / "out"
    ladder = main(
        ["--model", "smollm2-135m", "--rungs", "F16,Q4_0", "--limit", "1", "--calib", "4",
         "--small", "1", "--domains", "math,science,law", "--threads", str(TEST_THREADS),
         "--work", str(tmp_path / "work"), "--out", str(out)]
    )  # fmt: skip
    f16, q4 = ladder["rungs"]["F16"], ladder["rungs"]["Q4_0"]
    assert list(ladder["rungs"]) == ["F16", "Q4_0"]
    assert set(inspect_gguf(tmp_path / "work" / "smollm2-135m" / "F16.gguf").tensor_types) == {
        "F16",
        "F32",
    }
    assert q4["size_mb"] < f16["size_mb"] / 2.5
    assert list(f16["stored_as"]) == ["F16"]  # the norms (F32) are left out of the mix
    assert "Q4_0" in q4["stored_as"] and "F32" not in q4["stored_as"]
    assert f16["n"] == q4["n"] == 3 and f16["agreement_with_f16"] == 100.0
    assert 0.0 <= q4["agreement_with_f16"] <= 100.0
    assert f16["prompt_eval_tokens_per_s"] > 0 and q4["peak_rss_fast_only_mb"] > 0
    # the transfer refits F16's calibrator on F16's calib passes: on F16 itself it must be the
    # bench's own fit, to the bit
    own = ladder["transfer"]["F16"]["calibrated"]
    assert own["auroc_f16_calibrator"] == own["auroc_own_calibrator"]
    assert own["lift_lost"] == 0.0
    assert "F16" in safe_rungs(ladder["rungs"])
    for signal in f16["signals"].values():  # F16 against itself: no shift, no noise
        assert signal is None or (signal["routed_shift"], signal["routed_shift_se"]) == (0, 0)
    written = json.loads((out / "ladder.json").read_text())
    assert written["rungs"]["Q4_0"]["sha256"] == q4["sha256"]
    md = (out / "ladder.md").read_text()
    assert "**extrapolated**" in md and "| Q4_0 |" in md and "re-quantization noise" in md


def test_paired_shift_error_and_the_safe_rule() -> None:
    # one question of four routed on the rung and kept on F16: shift 25 points, SE 0.5 / 2
    assert paired_shift_se([0.2, 0.8, 0.8, 0.8], [0.8] * 4, 0.5) == 25.0
    assert paired_shift_se([0.2, 0.8], [0.2, 0.8], 0.5) == 0.0
    row = {"accuracy": 50.0, "accuracy_se": 6.0}
    f16 = {**row, "signals": {"letter": {"routed_shift": 0.0, "routed_shift_se": 0.0}}}
    noisy = {**row, "signals": {"letter": {"routed_shift": 6.0, "routed_shift_se": 4.0}}}
    moved = {**row, "signals": {"letter": {"routed_shift": -6.0, "routed_shift_se": 1.0}}}
    worse = {**noisy, "accuracy": 40.0}
    rungs = {"F16": f16, "noisy": noisy, "moved": moved, "worse": worse}
    assert safe_rungs(rungs) == ["F16", "noisy"]
