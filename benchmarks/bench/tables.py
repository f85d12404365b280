"""The numbers of a bench: the card-style table per domain, calibration and the tau sweep.

All from :class:`~benchmarks.bench.outcomes.Outcome` lists through ``edge_runtime.routing.metrics``.
Percentages are 0-100 (the card's unit); fractions and scores stay 0-1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from benchmarks.bench.config import SIGNALS
from benchmarks.bench.outcomes import Outcome
from benchmarks.bench.routellm import routellm_metrics
from edge_runtime.routing import metrics

MEAN = "mean"


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 1)


def _arrays(
    outcomes: Sequence[Outcome], signal: str
) -> tuple[list[float | None], list[bool], list[bool]]:
    return (
        [o.score(signal) for o in outcomes],
        [o.local_correct for o in outcomes],
        [o.cloud_correct for o in outcomes],
    )


def card_row(outcomes: Sequence[Outcome], *, signal: str, tau: float) -> dict[str, Any]:
    """The card's columns for one group of questions at ``tau`` on ``signal``."""
    scores, local, cloud = _arrays(outcomes, signal)
    point = metrics.operating_point(scores, local, cloud, tau)
    routed = [
        c for c, kept in zip(cloud, metrics.keeps_local(scores, tau), strict=True) if not kept
    ]
    return {
        "n": len(outcomes),
        "cloud_only": _pct(metrics.accuracy(cloud)),
        "edge_raw": _pct(metrics.accuracy(local)),
        "random_at_tau": _pct(point.random),
        "foggen_at_tau": _pct(point.accuracy),
        "cloud_acc_on_routed": _pct(metrics.accuracy(routed)) if routed else None,
        "routed_fraction": round(point.cloud_fraction, 3),
        "lift": round(100.0 * point.lift, 1),
    }


def by_domain(outcomes: Sequence[Outcome]) -> dict[str, list[Outcome]]:
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.domain, []).append(outcome)
    return groups


def card_table(outcomes: Sequence[Outcome], *, signal: str, tau: float) -> dict[str, Any]:
    """Per domain, then the mean of the domains (the card's Mean row is a macro average)."""
    rows = {d: card_row(group, signal=signal, tau=tau) for d, group in by_domain(outcomes).items()}
    mean: dict[str, Any] = {"n": sum(r["n"] for r in rows.values())}
    for column in next(iter(rows.values())):
        if column == "n":
            continue
        values = [r[column] for r in rows.values() if r[column] is not None]
        mean[column] = (
            round(sum(values) / len(values), 3 if column == "routed_fraction" else 1)
            if values
            else None
        )
    rows[MEAN] = mean
    return rows


def calibration(outcomes: Sequence[Outcome], *, bins: int = 10) -> dict[str, Any]:
    """ECE, AUROC (score vs "the local answer is correct") and the reliability bins per signal."""
    local = [o.local_correct for o in outcomes]
    result: dict[str, Any] = {}
    for signal in SIGNALS:
        scores = [o.score(signal) for o in outcomes]
        if all(s is None for s in scores):
            result[signal] = None  # e.g. no calibrator for this model
            continue
        ece = metrics.ece(scores, local, bins)
        auroc = metrics.auroc(scores, local)
        result[signal] = {
            "ece": None if ece is None else round(ece, 4),
            "auroc": None if auroc is None else round(auroc, 4),
            "distinct_values": len({s for s in scores if s is not None}),
            "reliability": [asdict(b) for b in metrics.reliability(scores, local, bins)],
        }
    result["bucket_histogram"] = {
        str(b): sum(o.bucket == b for o in outcomes) for b in (0.0, 0.25, 0.5, 0.75, 1.0)
    }
    return result


def _per_signal(
    outcomes: Sequence[Outcome],
    compute: Callable[[list[float | None], list[bool], list[bool]], Any],
) -> dict[str, Any]:
    """``compute(scores, local, cloud)`` for every signal the outcomes hold scores of."""
    result: dict[str, Any] = {}
    for signal in SIGNALS:
        scores, local, cloud = _arrays(outcomes, signal)
        if any(s is not None for s in scores):
            result[signal] = compute(scores, local, cloud)
    return result


def sweeps(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Per signal: the tau sweep (0 to 1 by 0.05) and the risk-coverage curve."""
    return _per_signal(
        outcomes,
        lambda scores, local, cloud: {
            "tau_sweep": [asdict(p) for p in metrics.tau_sweep(scores, local, cloud)],
            "risk_coverage": metrics.risk_coverage(scores, local),
        },
    )


def operating_points(
    outcomes: Sequence[Outcome], fractions: Sequence[float] = (0.7, 0.5)
) -> dict[str, Any]:
    """Per signal, the achievable tau nearest to each cloud fraction, with its lift."""

    def points(scores: list[float | None], local: list[bool], cloud: list[bool]) -> Any:
        found = {}
        for fraction in fractions:
            pick = metrics.recommend_tau(scores, local, cloud, target_cloud_fraction=fraction)
            point = metrics.operating_point(scores, local, cloud, pick.tau)
            found[f"{fraction:.2f}"] = {**asdict(point), "note": pick.note}
        return found

    return _per_signal(outcomes, points)


def routellm(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Per signal: RouteLLM's APGR (± bootstrap SE) and CPT(50 %) / CPT(80 %)."""

    def rounded(scores: list[float | None], local: list[bool], cloud: list[bool]) -> Any:
        m = asdict(routellm_metrics(scores, local, cloud))
        return {k: None if v is None else round(v, 4) for k, v in m.items()}

    return _per_signal(outcomes, rounded)
