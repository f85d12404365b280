"""Per rung, against the F16 rung: the figures a device owner compares, from one bench report.

Standard errors: binomial for accuracy, fractions and agreement (sqrt(p(1-p)/n)); paired for a
routing shift (the same questions on both rungs: the SE of the mean per-question difference);
Hanley & McNeil for AUROC; the bench's per-question lift standard error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks import stats
from benchmarks.bench.calib import auroc_standard_error, lift_standard_error
from edge_runtime.routing import metrics

TARGET = "0.70"  # the operating point compared: 70 % of calib routed to the cloud
SIGNALS = ("letter", "calibrated", "hidden")


def _binomial_se_points(p: float, n: int) -> float:
    """:func:`benchmarks.stats.binomial_se` in points, to 0.01 (NaN for no questions)."""
    return round(100.0 * stats.binomial_se(p, n), 2)


def paired_shift_se(scores: Sequence[Any], f16_scores: Sequence[Any], tau: float) -> float:
    """SE in points of the routed-fraction shift: each question routed (1) or kept (0) on this
    rung minus the same on F16, at the same tau."""
    rung = 1.0 - metrics.keeps_local(list(scores), tau)
    f16 = 1.0 - metrics.keeps_local(list(f16_scores), tau)
    return round(100.0 * stats.paired_se(rung, f16), 2)  # NaN for fewer than two questions


def _column(model: dict[str, Any], key: str) -> list[Any]:
    return [q[key] for q in model["questions"]]


def rung_row(model: dict[str, Any], f16: dict[str, Any]) -> dict[str, Any]:
    n = len(model["questions"])
    local = _column(model, "local_correct")
    accuracy = sum(local) / n
    agree = sum(a == b for a, b in zip(_column(model, "local"), _column(f16, "local"), strict=True))
    speed, process = model["speed"], model["speed"].get("process", {})
    row: dict[str, Any] = {
        "size_mb": model["size_mb"],
        "load_ms": model["load_ms"],
        "cold_start_ms": process.get("cold_start_ms"),
        "peak_rss_fast_only_mb": process.get("peak_rss_fast_only_mb"),
        "prompt_eval_tokens_per_s": speed.get("engine", {}).get("prompt_eval_tokens_per_s"),
        "decode_tokens_per_s": speed.get("engine", {}).get("decode_tokens_per_s"),
        "fast_median_ms": speed["fast"]["latency_ms"]["median"],
        "fast_p95_ms": speed["fast"]["latency_ms"]["p95"],
        "n": n,
        "accuracy": round(100.0 * accuracy, 2),
        "accuracy_se": _binomial_se_points(accuracy, n),
        "agreement_with_f16": round(100.0 * agree / n, 2),
        "agreement_se": _binomial_se_points(agree / n, n),
        "signals": {},
    }
    for signal in SIGNALS:
        row["signals"][signal] = _signal(model, f16, signal, local)
    return row


def _signal(
    model: dict[str, Any], f16: dict[str, Any], signal: str, local: list[bool]
) -> dict[str, Any] | None:
    scores = _column(model, signal)
    if all(s is None for s in scores):
        return None
    calibration = model["calibration"].get(signal) or {}
    own = (model.get("calib_operating_points") or {}).get(signal, {}).get(TARGET)
    f16_point = (f16.get("calib_operating_points") or {}).get(signal, {}).get(TARGET)
    out: dict[str, Any] = {
        "auroc": calibration.get("auroc"),
        "auroc_se": auroc_standard_error(scores, local),
        "ece": calibration.get("ece"),
    }
    if own is not None:
        out.update(tau=own["tau"], lift=_pct(own["eval"]["lift"]), lift_se=own["eval_lift_se"])
    if f16_point is not None:  # the tau a deployment chose on F16, kept on this rung
        fraction = metrics.cloud_fraction(scores, f16_point["tau"])
        f16_fraction = f16_point["eval"]["cloud_fraction"]
        out.update(
            f16_tau=f16_point["tau"],
            routed_at_f16_tau=_pct(fraction),
            routed_se=_binomial_se_points(fraction, len(scores)),
            routed_shift=_pct(fraction - f16_fraction),
            routed_shift_se=paired_shift_se(scores, _column(f16, signal), f16_point["tau"]),
        )
    return out


def with_f16_calibrator(
    row: dict[str, Any], transfer: dict[str, Any], f16_transfer: dict[str, Any]
) -> None:
    """A calibrated signal's routing at a fixed tau means F16's calibrator and tau kept on this
    rung (its own calibrator is another function): the routed % and shift come from the
    transfer; and the lift lost against the rung's own calibrator and tau."""
    for signal, t in transfer.items():
        own = row["signals"].get(signal)
        if own is None:
            continue
        if own.get("lift") is not None and t["lift"] is not None:
            t["lift_lost"] = round(own["lift"] - t["lift"], 2)
        own["routed_at_f16_tau"] = t["routed"]
        own["routed_se"] = _binomial_se_points(t["routed"] / 100.0, row["n"])
        own["routed_shift"] = round(t["routed"] - f16_transfer[signal]["routed"], 2)
        own["routed_shift_se"] = t["routed_shift_se"]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)


def transfer_row(
    f16_scores: Sequence[float], own_scores: Sequence[float], tau: float, model: dict[str, Any]
) -> dict[str, Any]:
    """A calibrator fitted on F16's calib passes, applied to this rung's eval passes at the tau
    chosen with it on F16's calib, against the rung's own calibrator at its own tau."""
    local = _column(model, "local_correct")
    cloud = _column(model, "cloud_correct")
    transferred = metrics.operating_point(list(f16_scores), local, cloud, tau)
    own_auroc = metrics.auroc(list(own_scores), local)
    f16_auroc = metrics.auroc(list(f16_scores), local)
    return {
        "auroc_f16_calibrator": None if f16_auroc is None else round(f16_auroc, 4),
        "auroc_own_calibrator": None if own_auroc is None else round(own_auroc, 4),
        "tau": tau,
        "routed": _pct(transferred.cloud_fraction),
        "lift": _pct(transferred.lift),
        "lift_se": lift_standard_error(list(f16_scores), local, cloud, tau),
    }
