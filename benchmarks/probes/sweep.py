"""The probe sweep: every read alone, the best reads together, a small MLP, baselines, the
learning curve and a shuffled-label null, all by 5-fold cross-validation on labelled passes.

Every number here is out-of-fold: each question is predicted by a probe fitted without it. The
settings are then compared on those numbers, so the winner's figure leans slightly optimistic
(the eval split, never seen here, gives the honest one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks.bench.routellm import routellm_metrics
from benchmarks.probes.data import LabelRun
from benchmarks.stats import auroc_se, lift_se
from edge_runtime.routing import metrics
from edge_runtime.routing.fit import log_loss
from edge_runtime.routing.fit_probe import DOMAIN_COLUMNS, Labelled, Setting, out_of_fold
from edge_runtime.routing.metrics import auroc, ece
from edge_runtime.routing.probe import Read

L2S = (10.0, 100.0, 1000.0)
SWEEP_K = 64
COMBO_KS = (64, 128)
CURVE_SIZES = (250, 500, 1000, 2000)
Progress = Callable[[str], None]


def scored(predictions: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    measured = auroc(predictions.tolist(), y)
    value = 0.5 if measured is None else measured
    positives = int(y.sum())
    return {
        "auroc": round(value, 4),
        "auroc_se": round(auroc_se(value, positives=positives, negatives=len(y) - positives), 4),
        "log_loss": round(log_loss(predictions, y), 5),
        "ece": round(ece(predictions.tolist(), y) or 0.0, 4),
    }


FRACTIONS = (0.5, 0.7)  # the routed shares the lift is read at (the profile's points)


def measured(
    name: str, train_scores: np.ndarray, scores: np.ndarray, local: np.ndarray, cloud: np.ndarray
) -> dict[str, Any]:
    """One routing signal: :func:`scored`, RouteLLM's APGR +- SE and CPT(50/80 %), and the
    lift over random routing at each of :data:`FRACTIONS`, the tau the quantile of
    ``train_scores`` (so chosen without the scored questions when those are another split's)."""
    row: dict[str, Any] = {"signal": name, **scored(scores, local)}
    routed = routellm_metrics(scores.tolist(), local.tolist(), cloud.tolist())
    row.update(apgr=routed.apgr, apgr_se=routed.apgr_se, cpt50=routed.cpt50, cpt80=routed.cpt80)
    for fraction in FRACTIONS:
        tau = float(np.quantile(train_scores, fraction))
        kept = metrics.keeps_local(scores.tolist(), tau)
        at = {"tau": round(tau, 5), **routed_share(kept, local, cloud)}
        row[f"at_{int(fraction * 100)}"] = at
    return row


def routed_share(kept: np.ndarray, local: np.ndarray, cloud: np.ndarray) -> dict[str, Any]:
    """Keeping ``kept`` local and sending the rest up: the share sent, the system accuracy and
    its lift over random routing of that share, in points +- bootstrap SE."""
    sent = float(1.0 - kept.mean())
    system = float(np.where(kept, local, cloud).mean())
    lift = system - metrics.random_baseline(sent, float(cloud.mean()), float(local.mean()))
    return {
        "cloud_fraction": round(sent, 4), "accuracy": round(system, 4),
        "lift_points": round(100 * lift, 2),
        "lift_se_points": round(100 * lift_se(kept, local, cloud), 2),
    }  # fmt: skip


def best_of(
    data: Labelled, settings: Sequence[Setting], **kw: Any
) -> tuple[Setting, dict[str, Any]]:
    """The setting with the lowest out-of-fold log loss, and its scores."""
    predictions = out_of_fold(data, settings, **kw)
    losses = {s: log_loss(p, data.y) for s, p in predictions.items()}
    best = min(settings, key=lambda s: (losses[s], s.k, -s.l2))
    return best, scored(predictions[best], data.y)


def baselines(run: LabelRun) -> dict[str, Any]:
    y = run.data.y
    out: dict[str, Any] = {"letter_max (raw)": scored(run.letter_max, y)}
    for name, columns in (("domain only", DOMAIN_COLUMNS), ("output features (v1)", None)):
        settings = [Setting(columns=columns or Setting().columns, l2=l2) for l2 in L2S]
        best, score = best_of(run.data, settings)
        out[name] = {**score, "setting": best.label()}
    return out


def layer_sweep(run: LabelRun, progress: Progress) -> list[dict[str, Any]]:
    """Each read alone (with the output features and the domain), k = 64, L2 chosen."""
    rows = []
    for read in sorted(run.data.states):
        best, score = best_of(run.data, [Setting((read,), k=SWEEP_K, l2=l2) for l2 in L2S])
        rows.append({"layer": read.layer, "position": read.position, "l2": best.l2, **score})
        progress(f"{read}: {score['auroc']:.3f}")
    return rows


def top_reads(sweep: list[dict[str, Any]], n: int) -> list[Read]:
    ranked = sorted(sweep, key=lambda r: -r["auroc"])
    return [Read(r["layer"], r["position"]) for r in ranked[:n]]


def combinations(
    run: LabelRun, sweep: list[dict[str, Any]], progress: Progress
) -> list[dict[str, Any]]:
    """The best two and three reads together, and a small MLP on the best one and pair."""
    best = top_reads(sweep, 3)
    rows = []
    candidates = [
        Setting(tuple(best[:n]), k=k, l2=l2) for n in (2, 3) for k in COMBO_KS for l2 in L2S
    ] + [Setting(tuple(best[:n]), kind="mlp", k=64, l2=l2) for n in (1, 2) for l2 in (1.0, 10.0)]
    groups: dict[tuple[str, tuple[Read, ...]], list[Setting]] = {}
    for setting in candidates:
        groups.setdefault((setting.kind, setting.reads), []).append(setting)
    for settings in groups.values():
        chosen, score = best_of(run.data, settings)
        rows.append({"setting": chosen.label(), "kind": chosen.kind, **score, "_setting": chosen})
        progress(f"{chosen.label()}: {score['auroc']:.3f}")
    return rows


def bands(layers: Sequence[int]) -> dict[str, tuple[int, int]]:
    """Layer bands by depth: early < 40 %, middle 40-70 %, late 70-100 %."""
    n = max(layers) + 1
    return {
        "early": (0, int(0.4 * n)),
        "middle": (int(0.4 * n), int(0.7 * n)),
        "late": (int(0.7 * n), n),
    }


def learning_curve(
    run: LabelRun, sweep: list[dict[str, Any]], progress: Progress
) -> dict[str, Any]:
    """CV AUROC of the best read of each band, fitted on 250 ... all training rows per fold.
    Bands by the sweep's depth; the best read among those ``run`` holds (a compact run keeps a
    few)."""
    out: dict[str, Any] = {}
    n_train = int(len(run.data.y) * 0.8)
    sizes = [s for s in CURVE_SIZES if s < n_train] + [n_train]
    held = [r for r in sweep if Read(r["layer"], r["position"]) in run.data.states]
    for band, (lo, hi) in bands([r["layer"] for r in sweep]).items():
        inside = [r for r in held if lo <= r["layer"] < hi]
        if not inside:
            continue
        top = max(inside, key=lambda r: r["auroc"])
        setting = Setting((Read(top["layer"], top["position"]),), k=SWEEP_K, l2=top["l2"])
        points = []
        for size in sizes:
            predictions = out_of_fold(run.data, [setting], train_size=size)[setting]
            points.append({"train_rows": size, **scored(predictions, run.data.y)})
        out[band] = {"read": f"{top['position']}@{top['layer']}", "points": points}
        progress(f"curve {band}: " + " ".join(f"{p['auroc']:.3f}" for p in points))
    return out


def shuffled_null(run: LabelRun, setting: Setting, *, seed: int = 0) -> dict[str, Any]:
    """The chosen setting fitted on shuffled labels: what chance looks like for this probe."""
    rng = np.random.default_rng(seed)
    shuffled = replace(run.data, y=rng.permutation(run.data.y))
    predictions = out_of_fold(shuffled, [setting])[setting]
    return scored(predictions, shuffled.y)
