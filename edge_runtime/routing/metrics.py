"""Routing metrics, as pure functions over per-question arrays (numpy, no model).

Conventions: ``scores`` may hold None or NaN (the pass produced no score); a question stays
local exactly when :func:`edge_runtime.routing.rule.route` keeps it (``score >= tau``; a
missing, NaN or out-of-range score escalates). ``local`` and ``cloud`` say whether the edge and
the cloud answer of each question are correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.routing.rule import Route, route

Floats = Sequence[float | None] | NDArray[np.float64]
Bools = Sequence[bool] | NDArray[np.bool_]


def _scores(scores: Floats) -> NDArray[np.float64]:
    return np.array([np.nan if s is None else float(s) for s in scores], dtype=np.float64)


def _bools(values: Bools) -> NDArray[np.bool_]:
    return np.asarray(values, dtype=bool)


def accuracy(correct: Bools) -> float:
    values = _bools(correct)
    return float(values.mean()) if values.size else float("nan")


def keeps_local(scores: Floats, tau: float) -> NDArray[np.bool_]:
    """Which questions the rule keeps local: :func:`route` applied to each score (each distinct
    value routed once), so a bench can never disagree with the runtime."""
    values, inverse = np.unique(_scores(scores), return_inverse=True)
    local = np.array([route(v, tau) is Route.LOCAL for v in values.tolist()], dtype=bool)
    return local[inverse.reshape(-1)] if local.size else np.zeros(0, dtype=bool)


def cloud_fraction(scores: Floats, tau: float) -> float:
    return float(1.0 - keeps_local(scores, tau).mean())


def system_accuracy(scores: Floats, local: Bools, cloud: Bools, tau: float) -> float:
    """Accuracy when each question takes the local answer if kept, else the cloud's."""
    kept = keeps_local(scores, tau)
    return float(np.where(kept, _bools(local), _bools(cloud)).mean())


def random_baseline(fraction: float, cloud_only: float, raw: float) -> float:
    """The card's "Random @ tau": the same fraction routed at random."""
    return fraction * cloud_only + (1.0 - fraction) * raw


def auroc(scores: Floats, labels: Bools) -> float | None:
    """P(score of a correct answer > score of a wrong one), ties counting half (Mann-Whitney).

    A missing score ranks below every real one. None when only one class is present.
    """
    values = np.nan_to_num(_scores(scores), nan=-np.inf)
    positive = _bools(labels)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    pos, neg = values[positive], np.sort(values[~positive])
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (n_pos * n_neg))


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    confidence: float | None  # mean confidence in the bin
    accuracy: float | None


def reliability(confidences: Floats, correct: Bools, bins: int = 10) -> list[Bin]:
    """Equal-width bins over [0, 1] (1.0 falls in the last); missing confidences are left out."""
    conf = _scores(confidences)
    ok = _bools(correct)
    present = ~np.isnan(conf)
    conf, ok = np.clip(conf[present], 0.0, 1.0), ok[present]
    index = np.minimum((conf * bins).astype(int), bins - 1)
    result = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        result.append(
            Bin(
                low=b / bins,
                high=(b + 1) / bins,
                count=count,
                confidence=float(conf[inside].mean()) if count else None,
                accuracy=float(ok[inside].mean()) if count else None,
            )
        )
    return result


def ece(confidences: Floats, correct: Bools, bins: int = 10) -> float | None:
    """Expected calibration error: sum over bins of |accuracy - confidence| x bin share."""
    table = reliability(confidences, correct, bins)
    total = sum(b.count for b in table)
    if total == 0:
        return None
    return float(
        sum(b.count * abs(b.accuracy - b.confidence) for b in table if b.count) / total  # type: ignore[operator]
    )


def achievable_taus(scores: Floats) -> list[float]:
    """Every tau in [0, 1] that gives a distinct routing: 0 and each distinct score in (0, 1].

    Between two adjacent scores every tau routes alike, so nothing is interpolated.
    """
    values = _scores(scores)
    values = values[~np.isnan(values) & (values > 0.0) & (values <= 1.0)]
    return [0.0, *sorted(set(values.tolist()))]


@dataclass(frozen=True)
class Operating:
    tau: float
    cloud_fraction: float
    accuracy: float
    random: float
    lift: float


def operating_point(scores: Floats, local: Bools, cloud: Bools, tau: float) -> Operating:
    fraction = cloud_fraction(scores, tau)
    system = system_accuracy(scores, local, cloud, tau)
    rand = random_baseline(fraction, accuracy(cloud), accuracy(local))
    return Operating(tau, fraction, system, rand, system - rand)


def tau_sweep(
    scores: Floats, local: Bools, cloud: Bools, taus: Sequence[float] | None = None
) -> list[Operating]:
    """System accuracy, cloud fraction and lift over tau (default: 0 to 1 in steps of 0.05)."""
    grid = np.round(np.linspace(0.0, 1.0, 21), 4).tolist() if taus is None else list(taus)
    return [operating_point(scores, local, cloud, tau) for tau in grid]


def risk_coverage(scores: Floats, local: Bools) -> list[tuple[float, float]]:
    """(coverage, risk) when the k most confident questions stay local, k = 1..n.

    Ties in score are taken together (one point per distinct threshold): a router cannot split
    them. Risk is the error rate among the questions kept.
    """
    values = np.nan_to_num(_scores(scores), nan=-np.inf)
    ok = _bools(local)
    points = []
    for tau in sorted(set(values.tolist()), reverse=True):
        kept = values >= tau
        points.append((float(kept.mean()), float(1.0 - ok[kept].mean())))
    return points


@dataclass(frozen=True)
class Recommendation:
    tau: float
    cloud_fraction: float
    accuracy: float
    target: dict[str, float]
    met: bool  # the target was reached (exactly for accuracy; nearest for a fraction)
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend_tau(
    scores: Floats,
    local: Bools,
    cloud: Bools,
    *,
    target_cloud_fraction: float | None = None,
    target_accuracy: float | None = None,
) -> Recommendation:
    """Pick tau among the achievable ones for one target.

    ``target_cloud_fraction``: the tau whose cloud fraction is nearest (ties: the higher
    accuracy, then the smaller fraction). ``target_accuracy``: the smallest cloud fraction
    reaching it; if none does, the most accurate tau, flagged ``met=False``.
    """
    if (target_cloud_fraction is None) == (target_accuracy is None):
        raise ValueError("give exactly one of target_cloud_fraction and target_accuracy")
    points = [operating_point(scores, local, cloud, t) for t in achievable_taus(scores)]
    if target_cloud_fraction is not None:
        if not 0.0 <= target_cloud_fraction <= 1.0:
            raise ValueError("target_cloud_fraction must be in [0, 1]")
        best = min(
            points,
            key=lambda p: (abs(p.cloud_fraction - target_cloud_fraction), -p.accuracy, p.tau),
        )
        exact = abs(best.cloud_fraction - target_cloud_fraction) < 1e-9
        note = (
            "exact"
            if exact
            else f"nearest achievable cloud fraction {best.cloud_fraction:.3f} "
            f"(the signal has {len(points)} distinct thresholds; nothing is interpolated)"
        )
        return Recommendation(
            best.tau,
            best.cloud_fraction,
            best.accuracy,
            {"cloud_fraction": target_cloud_fraction},
            exact,
            note,
        )
    assert target_accuracy is not None
    reaching = [p for p in points if p.accuracy >= target_accuracy - 1e-12]
    if reaching:
        best = min(reaching, key=lambda p: (p.cloud_fraction, -p.accuracy, p.tau))
        note = "smallest cloud fraction reaching the target accuracy"
    else:
        best = max(points, key=lambda p: (p.accuracy, -p.cloud_fraction))
        note = f"target not reachable; best accuracy {best.accuracy:.3f}"
    return Recommendation(
        best.tau,
        best.cloud_fraction,
        best.accuracy,
        {"accuracy": target_accuracy},
        bool(reaching),
        note,
    )
