"""One bench run: for each model, the edge pass, the tables, the speed part; then the report.

foggen bench [--full | --limit N] [--domains d,d] [--model X ...] [--out DIR]
             [--cloud-url URL] [--hf-checkpoint DIR] [--threads N]
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.bench import speed, tables
from benchmarks.bench.calib import calib_operating_points, calibrated_scores
from benchmarks.bench.config import BenchConfig
from benchmarks.bench.markdown import render
from benchmarks.bench.outcomes import Cloud, Outcome, cloud_pass, combine, edge_pass, open_cloud
from benchmarks.bench.plots import plots_available, write_plots
from benchmarks.bench.transformers_baseline import run_baseline, transformers_available
from benchmarks.bench.walks import compare_walks
from benchmarks.errors import BenchConfigError
from benchmarks.report import machine, write_json
from edge_runtime.config import RuntimeConfig, foggen_home
from edge_runtime.mcq import stratified
from edge_runtime.provenance import git_commit
from edge_runtime.question import Question
from edge_runtime.routing.passes import Pass, PassStore
from edge_runtime.runtime import EdgeRuntime

log = logging.getLogger(__name__)

FORMAT = "foggen-bench"
EMBEDDED = "embedded"  # --model embedded: the embedded default even when FOGGEN_MODEL is set
VERSION = 1


def run_bench(config: BenchConfig, *, home: Path | None = None) -> dict[str, Any]:
    """Measure every model on the same questions and the same cloud replies; write the report."""
    questions = stratified(config.per_domain, split=config.split, domains=config.domains)
    small = stratified(config.small_per_domain, split=config.split, domains=config.domains)
    calib = stratified(config.calib_per_domain or 0, split="calib", domains=config.domains)
    report: dict[str, Any] = _header(config, questions, small, calib)
    with open_cloud(config.cloud) as cloud:
        report["cloud"] = _cloud_info(cloud)
        cloud_letters = cloud_pass(cloud.client, questions, progress=config.progress)
        calib_letters = cloud_pass(cloud.client, calib, progress=config.progress)
    sets = Sets(questions, small, calib, cloud_letters, calib_letters)
    report["models"] = [_bench_model(config, spec, sets, home=home) for spec in config.models]
    _label_models(report["models"])
    report["finished_at"] = _now()
    return report


def write_report(report: dict[str, Any], out: Path, *, plots: bool = True) -> list[Path]:
    """bench.json, bench.md and the PNG plots in ``out``; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    missing = plots_available() if plots else "plots disabled (--no-plots)"
    if missing is None:
        try:
            written += write_plots(report, out)
        except Exception as exc:  # a plot must never cost the measurements: JSON and MD follow
            log.warning("plotting failed, the report is written without plots: %r", exc)
            missing = f"plotting failed: {exc!r}"
    report["plots"] = [p.name for p in written] or {"skipped": missing}
    written.insert(0, write_json(out / "bench.json", report))
    md = out / "bench.md"
    md.write_text(render(report), encoding="utf-8")
    written.insert(1, md)
    return written


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Sets:
    """The questions of a run and the cloud's letters for them (the same for every model)."""

    questions: list[Question]
    small: list[Question]
    calib: list[Question]
    cloud: list[str | None]
    calib_cloud: list[str | None]


def _header(
    config: BenchConfig, questions: list[Question], small: list[Question], calib: list[Question]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "started_at": _now(),
        "git_commit": git_commit(),
        "machine": {**machine(), "cpu_count": os.cpu_count(), "threads_used": config.threads},
        "settings": {
            "domains": list(config.domains),
            "per_domain": config.per_domain or "all",
            "n_questions": len(questions),
            "small_per_domain": config.small_per_domain,
            "n_small": len(small),
            "calib_per_domain": config.calib_per_domain,
            "n_calib": len(calib),
            "tau": config.tau,
            "card_signal": config.signal,
            "split": config.split,
            "mode": "fast",
        },
    }


def _cloud_info(cloud: Cloud) -> dict[str, Any]:
    return {
        "label": cloud.label,
        "simulated": cloud.simulated,
        "configured_accuracy_percent": cloud.configured_accuracy,
    }


def _bench_model(
    config: BenchConfig, spec: str | None, sets: Sets, *, home: Path | None
) -> dict[str, Any]:
    usual = RuntimeConfig.from_env()  # spec None: the usual selection (FOGGEN_MODEL or embedded)
    model = usual.model if spec is None else (None if spec == EMBEDDED else spec)
    runtime_config = replace(usual, model=model, n_threads=config.threads)
    started = time.perf_counter()
    runtime = EdgeRuntime.load(runtime_config, home=home, capture_hidden=True)
    load_ms = (time.perf_counter() - started) * 1000.0
    try:
        store = PassStore.for_runtime(runtime, home or foggen_home())
        edge = edge_pass(runtime, sets.questions, store=store, progress=config.progress)
        result = _model_info(runtime, model, load_ms)
        result["passes"] = {"store": str(store.path), "cached": sum(p.cached for p in edge)}
        outcomes = _outcomes(config, runtime, store, sets, edge, result)
        result.update(_routing_numbers(outcomes, config.signal, config.tau))
        if config.compare_walks:
            result["walks"] = compare_walks(
                runtime, edge, home=home or foggen_home(), progress=config.progress
            )
        result["speed"] = _speed(config, runtime, outcomes, sets.small, model)
        result["format_compliance"] = speed.compliance(result["speed"].pop("rows"))
        result["questions"] = [o.to_dict() for o in outcomes]
    finally:
        runtime.close()
    return result


def _outcomes(
    config: BenchConfig,
    runtime: EdgeRuntime,
    store: PassStore,
    sets: Sets,
    edge: list[Pass],
    result: dict[str, Any],
) -> list[Outcome]:
    """Eval outcomes; with calib questions, the calibrator and the taus come from calib."""
    if not sets.calib:  # the loaded calibrator's p_correct, under the signal it reads
        p_correct = [runtime.p_correct(p.question, p.result) for p in edge]
        loaded = runtime.calibrator
        signal = "hidden" if loaded is not None and loaded.needs_hidden else "calibrated"
        return combine(edge, sets.cloud, {signal: p_correct})
    calib = edge_pass(
        runtime, sets.calib, store=store, progress=config.progress, desc="edge (calib)"
    )
    sha256 = runtime.model.file.sha256
    fitted = calibrated_scores(calib, edge, model_sha256=sha256)
    result["calibrator_fit"] = fitted.fits["calibrated"]
    result["hidden_calibrator_fit"] = fitted.fits.get("hidden")
    result["shuffled_label_probe"] = fitted.shuffled
    result["passes"]["calib_cached"] = sum(p.cached for p in calib)
    outcomes = combine(edge, sets.cloud, fitted.evaluation)
    calib_outcomes = combine(calib, sets.calib_cloud, fitted.calib)
    result["calib_operating_points"] = calib_operating_points(calib_outcomes, outcomes)
    result["calib_raw_accuracy"] = round(
        sum(o.local_correct for o in calib_outcomes) / len(calib_outcomes), 4
    )
    return outcomes


def _model_info(runtime: EdgeRuntime, spec: str | None, load_ms: float) -> dict[str, Any]:
    file, info = runtime.model.file, runtime.model.info
    return {
        "spec": spec,
        "path": str(file.path),
        "sha256": file.sha256,
        "quantization": info.file_type,
        "size_mb": round(file.path.stat().st_size / 2**20, 1),
        "load_ms": round(load_ms, 1),
        "calibrator": getattr(runtime, "calibrator", None) is not None,
    }


def _routing_numbers(outcomes: list[Any], signal: str, tau: float) -> dict[str, Any]:
    if all(o.score(signal) is None for o in outcomes):
        raise BenchConfigError(
            f"no {signal!r} scores for this model (calibrated: run 'foggen calibrator fit')"
        )
    return {
        "card": tables.card_table(outcomes, signal=signal, tau=tau),
        "calibration": tables.calibration(outcomes),
        "operating_points": tables.operating_points(outcomes),
        "sweeps": tables.sweeps(outcomes),
        "routellm": tables.routellm(outcomes),
    }


def _speed(
    config: BenchConfig,
    runtime: EdgeRuntime,
    outcomes: list[Any],
    small: Sequence[Question],
    spec: str | None,
) -> dict[str, Any]:
    rows = speed.small_subset_runs(runtime, small, progress=config.progress) if small else []
    baseline = _baseline(config, runtime, small)
    table = speed.mode_latency(rows, [r["ms"] for r in baseline.get("rows", [])]) if rows else {}
    return {
        "fast": speed.fast_speed(outcomes),
        "small_subset_latency_ms": table,
        "ratios_of_medians": speed.ratios(table) if table else {},
        "limits": speed.limit_ratios(rows),
        "engine": speed.engine_speed(runtime, rows, small[0]) if rows else {},
        "process": speed.process_figures(spec, config.threads, cold_start=config.cold_start),
        "transformers": baseline,
        "rows": rows,
    }


def _baseline(
    config: BenchConfig, runtime: EdgeRuntime, small: Sequence[Question]
) -> dict[str, Any]:
    if runtime.model.info.architecture != "gemma3":
        return {
            "skipped": f"the transformers baseline reads Gemma-3 checkpoints; this is a "
            f"'{runtime.model.info.architecture}' model"
        }
    if config.hf_checkpoint is None:
        return {
            "skipped": "no --hf-checkpoint given (make one with 'foggen convert --from-gguf "
            "<gguf> --to-hf DIR')"
        }
    missing = transformers_available()
    if missing:
        return {"skipped": missing}
    return run_baseline(
        config.hf_checkpoint, runtime, small, threads=config.threads, progress=config.progress
    )


def _label_models(models: list[dict[str, Any]]) -> None:
    """A short, unique label per model: 'embedded' or the file name."""
    seen: dict[str, int] = {}
    for model in models:
        label = EMBEDDED if model["spec"] is None else Path(model["path"]).stem
        seen[label] = seen.get(label, 0) + 1
        model["label"] = label if seen[label] == 1 else f"{label}#{seen[label]}"
