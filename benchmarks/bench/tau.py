"""``foggen tau recommend``: thresholds from a bench run, globally and per domain.

Reads the per-question outcomes a bench stored in ``bench.json`` and writes the tau file the
runtime loads (format in ``edge_runtime.routing.taus``). Only achievable thresholds are chosen: on a
signal with few distinct values (the five buckets) the nearest achievable cloud fraction is
reported, never an interpolated one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench.run import FORMAT as BENCH_FORMAT
from benchmarks.errors import BenchFileError
from edge_runtime.routing import metrics
from edge_runtime.routing.rule import Signal
from edge_runtime.routing.taus import FORMAT, VERSION, TauTable


def load_bench(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchFileError(
            f"cannot read the bench file {path}: {exc}; run 'foggen bench'"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != BENCH_FORMAT:
        raise BenchFileError(f"{path} is not a 'foggen bench' report (bench.json)")
    return data


def pick_model(bench: dict[str, Any], label: str | None) -> dict[str, Any]:
    models = bench["models"]
    if label is None:
        if len(models) > 1:
            names = ", ".join(m["label"] for m in models)
            raise BenchFileError(f"the bench holds several models ({names}); pass --bench-model")
        return dict(models[0])
    for model in models:
        if label in (model["label"], model["sha256"]):
            return dict(model)
    raise BenchFileError(f"no model {label!r} in the bench file")


def score_column(rows: Sequence[dict[str, Any]], signal: Signal) -> str:
    """The bench column a runtime signal reads: ``calibrated`` routes on the loaded calibrator's
    p_correct, the hidden-state one (bench column ``hidden``) where the bench has it."""
    if signal is Signal.CALIBRATED and any(r.get("hidden") is not None for r in rows):
        return "hidden"
    return signal.value


def _recommend(
    rows: Sequence[dict[str, Any]], signal: Signal, target: dict[str, float]
) -> dict[str, Any]:
    column = score_column(rows, signal)
    scores = [r.get(column) for r in rows]
    local = [r["local_correct"] for r in rows]
    cloud = [r["cloud_correct"] for r in rows]
    pick = metrics.recommend_tau(
        scores,
        local,
        cloud,
        target_cloud_fraction=target.get("cloud_fraction"),
        target_accuracy=target.get("accuracy"),
    )
    return {**pick.to_dict(), "n": len(rows)}


def recommend(
    bench: dict[str, Any],
    *,
    signal: Signal,
    target: dict[str, float],
    model_label: str | None = None,
    source: str = "bench.json",
) -> dict[str, Any]:
    """The tau file's content for one model and one target."""
    model = pick_model(bench, model_label)
    rows = model["questions"]
    column = score_column(rows, signal)
    if all(r.get(column) is None for r in rows):
        raise BenchFileError(
            f"the bench has no {signal.value!r} scores for this model"
            + (
                " (no calibrator was loaded: run 'foggen calibrator fit')"
                if signal is Signal.CALIBRATED
                else ""
            )
        )
    domains: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        domains.setdefault(row["domain"], []).append(row)
    table = {
        "format": FORMAT,
        "version": VERSION,
        "model_sha256": model["sha256"],
        "signal": signal.value,
        "target": target,
        "global": _recommend(rows, signal, target),
        "domains": {d: _recommend(group, signal, target) for d, group in domains.items()},
        "source": {
            "bench": source,
            "split": bench["settings"].get("split", "eval"),
            "n_questions": len(rows),
            "git_commit": bench.get("git_commit"),
        },
    }
    if signal is Signal.CALIBRATED:
        table["p_correct_version"] = 2 if column == "hidden" else 1
    TauTable.from_dict(table)  # what we write, the runtime must read
    return table
