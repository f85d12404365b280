"""RouteLLM's routing metrics (Ong et al. 2024, "RouteLLM: Learning to Route LLMs with
Preference Data"), as pure numpy functions over per-question arrays.

The paper routes between a strong and a weak model; here the strong model is the cloud and the
weak one the edge model. Sweeping the share of questions sent to the strong model (the cloud
fraction c) from 0 to 1 traces the router's accuracy curve acc(c); acc(0) is the edge alone and
acc(1) the cloud alone. The paper's definitions, computed here:

- PGR(c), performance gap recovered: (acc(c) - acc(0)) / (acc(1) - acc(0)).
- APGR, average performance gap recovered: the area under PGR over the whole cloud-fraction
  sweep c in [0, 1]. A random router scores 0.5; the paper's best MMLU router reports 0.603.
- CPT(x%), call-performance threshold: the cloud fraction needed to recover x% of the gap
  (a random router needs x%).

Conventions: a router escalates the *lowest* scores first (higher score = more confident = kept
at the edge, as :func:`edge_runtime.routing.rule.route` does), and escalating k of n questions
is the cloud fraction k/n. Only the order of the scores matters. A missing score (None or NaN:
the pass produced no score) ranks below every real one, so it is escalated first. Questions with
equal scores cannot be told apart by the router: within a tie group the curve is the expectation
over a random order, a straight line between the group's ends (a constant score therefore gives
exactly the random router). APGR and CPT need a gap to recover: when acc(1) <= acc(0) they are
None. The sweep is exact at every k = 0..n (the paper samples 10 thresholds); APGR is the
trapezoid over all n + 1 points and CPT interpolates linearly between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_runtime.routing.metrics import Bools, Floats

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
_CHUNK_CELLS = 1 << 21  # resample rows x questions handled at once by the bootstrap


@dataclass(frozen=True)
class _Sorted:
    """The questions in escalation order (lowest score first)."""

    gain: NDArray[np.float64]  # cloud_correct - edge_correct: what escalating it changes
    group: NDArray[np.int64]  # tie-group id, non-decreasing; equal scores share one
    position: NDArray[np.int64]  # where each question (in input order) sits in this order
    edge_right: int  # edge-correct answers over all questions


def _sorted(score: Floats, edge_correct: Bools, cloud_correct: Bools) -> _Sorted:
    """Validate the inputs and put them in escalation order."""
    edge = np.asarray(edge_correct, dtype=bool).reshape(-1)
    cloud = np.asarray(cloud_correct, dtype=bool).reshape(-1)
    keys = np.array([np.nan if s is None else float(s) for s in score], dtype=np.float64)
    if not len(keys) == len(edge) == len(cloud):
        raise ValueError(
            "score, edge_correct and cloud_correct must have one entry per question "
            f"(got {len(keys)}, {len(edge)} and {len(cloud)}); pass arrays of equal length"
        )
    if len(keys) == 0:
        raise ValueError("no questions: pass at least one score with its two outcomes")
    keys = np.nan_to_num(keys, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    group = np.concatenate(([0], np.cumsum(ordered[1:] != ordered[:-1])))
    gain = cloud[order].astype(np.float64) - edge[order].astype(np.float64)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return _Sorted(gain, group.astype(np.int64), position.astype(np.int64), int(edge.sum()))


def _gain_curves(gain: NDArray[np.float64], group: NDArray[np.int64]) -> NDArray[np.float64]:
    """Expected accuracy gain (in questions) with k = 0..n escalated, one row per sample.

    ``gain`` and ``group`` are (rows, n) in escalation order. At a tie-group boundary the gain
    is the exact cumulative sum; inside a group it moves linearly between the group's ends.
    """
    rows, n = gain.shape
    cumulative = np.zeros((rows, n + 1))
    np.cumsum(gain, axis=1, out=cumulative[:, 1:])
    position = np.arange(n)
    starts = np.ones((rows, n), dtype=bool)
    starts[:, 1:] = group[:, 1:] != group[:, :-1]
    start = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    ends = np.ones((rows, n), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    end_at = np.where(ends, position + 1, n)
    end = np.minimum.accumulate(end_at[:, ::-1], axis=1)[:, ::-1]
    low = np.take_along_axis(cumulative, start, axis=1)
    high = np.take_along_axis(cumulative, end, axis=1)
    curves = np.zeros((rows, n + 1))
    curves[:, 1:] = low + (position + 1 - start) / (end - start) * (high - low)
    return curves


def accuracy_curve(
    score: Floats, edge_correct: Bools, cloud_correct: Bools
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(cloud fractions k/n, system accuracy) with the k lowest-scored escalated, k = 0..n.

    Ties are the expectation over a random order within the tie group; a missing score is
    escalated first. Raises ValueError on inputs of unequal length or no questions.
    """
    data = _sorted(score, edge_correct, cloud_correct)
    n = len(data.gain)
    gained = _gain_curves(data.gain[None, :], data.group[None, :])[0]
    return np.arange(n + 1) / n, (data.edge_right + gained) / n


def _pgr_rows(curves: NDArray[np.float64]) -> NDArray[np.float64]:
    """PGR per row of :func:`_gain_curves` output; rows with no gap become NaN."""
    total = curves[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, curves / np.where(total > 0, total, 1.0), np.nan)


def pgr_curve(
    score: Floats, edge_correct: Bools, cloud_correct: Bools
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(cloud fractions k/n, PGR) for k = 0..n; None when acc(1) <= acc(0) (no gap).

    PGR(c) = (acc(c) - acc(0)) / (acc(1) - acc(0)): 0 at c = 0, 1 at c = 1, and above 1 where
    the router beats the cloud alone (the edge is right on questions the cloud gets wrong).
    """
    data = _sorted(score, edge_correct, cloud_correct)
    n = len(data.gain)
    pgr = _pgr_rows(_gain_curves(data.gain[None, :], data.group[None, :]))[0]
    if np.isnan(pgr[0]):
        return None
    return np.arange(n + 1) / n, pgr


def _area(pgr: NDArray[np.float64]) -> NDArray[np.float64]:
    """Trapezoid area of PGR rows over fractions 0, 1/n, ..., 1 (PGR(0) = 0, PGR(1) = 1)."""
    n = pgr.shape[1] - 1
    return (pgr.sum(axis=1) - 0.5 * (pgr[:, 0] + pgr[:, -1])) / n


def apgr(score: Floats, edge_correct: Bools, cloud_correct: Bools) -> float | None:
    """Average performance gap recovered: the area under PGR over c in [0, 1].

    Random routing (a constant score) gives 0.5; a router better than random more, an oracle
    can exceed 1. None when acc(1) <= acc(0): there is no gap to recover.
    """
    curve = pgr_curve(score, edge_correct, cloud_correct)
    if curve is None:
        return None
    return float(_area(curve[1][None, :])[0])


def cpt(
    score: Floats, edge_correct: Bools, cloud_correct: Bools, *, recovered: float
) -> float | None:
    """Call-performance threshold: the smallest cloud fraction at which PGR reaches
    ``recovered`` (0.5 for CPT(50%)), interpolated linearly between curve points.

    None when there is no gap (acc(1) <= acc(0)) or PGR never reaches ``recovered`` (possible
    only above 1). A random router gives ``recovered`` itself for 0 <= recovered <= 1.
    """
    if not np.isfinite(recovered):
        raise ValueError(f"recovered must be a finite share of the gap, e.g. 0.5 (got {recovered})")
    curve = pgr_curve(score, edge_correct, cloud_correct)
    if curve is None:
        return None
    fractions, pgr = curve
    reached = np.flatnonzero(pgr >= recovered)
    if reached.size == 0:
        return None
    j = int(reached[0])
    if j == 0:
        return 0.0
    step = (recovered - pgr[j - 1]) / (pgr[j] - pgr[j - 1])
    return float(fractions[j - 1] + step * (fractions[j] - fractions[j - 1]))


def apgr_standard_error(
    score: Floats,
    edge_correct: Bools,
    cloud_correct: Bools,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> float | None:
    """Bootstrap standard error of :func:`apgr`, resampling questions with replacement.

    The resamples are the rows of ``np.random.default_rng(seed).integers(0, n, size=(resamples,
    n))`` (question indices in input order; deterministic for a seed); a question drawn twice
    ties with itself. Resamples with no gap are skipped. The sample standard deviation (ddof=1)
    of the remaining APGRs; None when the full sample has no gap or fewer than two remain.
    """
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2 (got {resamples})")
    data = _sorted(score, edge_correct, cloud_correct)
    n = len(data.gain)
    if data.gain.sum() <= 0:  # acc(1) <= acc(0): APGR itself is None
        return None
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    draws = np.sort(data.position[draws], axis=1)  # each resample in escalation order
    chunk = max(1, _CHUNK_CELLS // (n + 1))
    areas = [
        _area(_pgr_rows(_gain_curves(data.gain[rows], data.group[rows])))
        for rows in (draws[i : i + chunk] for i in range(0, resamples, chunk))
    ]
    values = np.concatenate(areas)
    values = values[~np.isnan(values)]
    return float(values.std(ddof=1)) if values.size >= 2 else None


@dataclass(frozen=True)
class RouteLLMMetrics:
    """The paper's summary of one router; each None when there is no gap to recover."""

    apgr: float | None
    apgr_se: float | None  # bootstrap standard error of apgr
    cpt50: float | None  # cloud fraction recovering 50% of the gap
    cpt80: float | None  # cloud fraction recovering 80% of the gap


def routellm_metrics(score: Floats, edge_correct: Bools, cloud_correct: Bools) -> RouteLLMMetrics:
    """APGR with its bootstrap standard error, CPT(50%) and CPT(80%)."""
    return RouteLLMMetrics(
        apgr=apgr(score, edge_correct, cloud_correct),
        apgr_se=apgr_standard_error(score, edge_correct, cloud_correct),
        cpt50=cpt(score, edge_correct, cloud_correct, recovered=0.5),
        cpt80=cpt(score, edge_correct, cloud_correct, recovered=0.8),
    )
