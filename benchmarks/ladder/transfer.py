"""Does a calibrator fitted on the F16 rung serve the other rungs?

Calibrators are keyed by the model's sha256, so a re-quantized file never loads another's; a
device owner who ships a new rung may override that. Measured here: the F16 calib passes' fit
(the same fit the bench made for F16) applied to every rung's eval passes, at the tau chosen
with it on F16's calib, against each rung's own fit and tau.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.bench.calib import design
from benchmarks.bench.config import BenchConfig
from benchmarks.bench.outcomes import edge_pass
from benchmarks.ladder.analysis import TARGET, paired_shift_se, transfer_row
from benchmarks.ladder.rungs import Rung
from edge_runtime.config import RuntimeConfig, foggen_home
from edge_runtime.mcq import stratified
from edge_runtime.routing.fit import fit_calibrator
from edge_runtime.routing.fit_hidden import fit_hidden_calibrator
from edge_runtime.routing.passes import Pass, PassStore
from edge_runtime.runtime import EdgeRuntime


def cached_passes(path: Path, questions: list[Any], threads: int) -> tuple[list[Pass], str]:
    """The rung's passes (from its pass cache: the bench has just made them) and its sha256."""
    config = replace(RuntimeConfig.from_env(), model=str(path), n_threads=threads)
    runtime = EdgeRuntime.load(config, capture_hidden=True)
    try:
        store = PassStore.for_runtime(runtime, foggen_home())
        return edge_pass(runtime, questions, store=store, progress=False), runtime.model.file.sha256
    finally:
        runtime.close()


def calibrator_transfer(
    config: BenchConfig, rungs: list[Rung], report: dict[str, Any]
) -> dict[str, Any]:
    questions = stratified(config.per_domain, split=config.split, domains=config.domains)
    calib = stratified(config.calib_per_domain, split="calib", domains=config.domains)
    f16_calib, sha = cached_passes(rungs[0].path, calib, config.threads)
    x, y, hidden = design(f16_calib)
    v1 = fit_calibrator(x, y, model_sha256=sha)
    v2 = None if hidden is None else fit_hidden_calibrator(x, hidden, y, model_sha256=sha)
    f16_points = report["models"][0].get("calib_operating_points") or {}
    result: dict[str, Any] = {}
    f16_predicted: dict[str, list[float]] = {}
    for rung, model in zip(rungs, report["models"], strict=True):
        passes, _ = cached_passes(rung.path, questions, config.threads)
        xe, _, he = design(passes)
        predicted = {"calibrated": v1.predict(xe).tolist()}
        if v2 is not None and he is not None:
            predicted["hidden"] = v2.predict(xe, he).tolist()
        f16_predicted = f16_predicted or predicted  # the first rung is F16
        result[rung.name] = {}
        for signal, scores in predicted.items():
            if signal not in f16_points:
                continue
            tau = f16_points[signal][TARGET]["tau"]
            row = transfer_row(scores, [q[signal] for q in model["questions"]], tau, model)
            row["routed_shift_se"] = paired_shift_se(scores, f16_predicted[signal], tau)
            result[rung.name][signal] = row
    return result
