"""Standard errors of the figures the benchmarks report, as fractions (unrounded).

One place for the formulas; each report keeps its own units (percent or fraction) and rounding
at the call site, so its numbers do not move:

- :func:`binomial_se`: a proportion p out of n, sqrt(p(1 - p) / n);
- :func:`mean_se`: the mean of per-item values, their sample standard deviation (ddof=1) over
  sqrt(n); :func:`paired_se` applies it to the per-item differences of two measures on the
  same items (same questions on two rungs, two routers), which is what makes it paired;
- :func:`auroc_se`: Hanley & McNeil's (1982) standard error of an AUROC;
- :func:`lift_se`: the bootstrap standard error of a router's lift over random routing of the
  same share (the lift mixes four means of the same questions: no closed form is simpler).

Nothing to compute gives NaN (no items, or one value for a sample deviation) rather than
a numpy warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["auroc_se", "binomial_se", "lift_se", "mean_se", "paired_se"]


def binomial_se(p: float, n: int) -> float:
    """The standard error of a proportion ``p`` measured on ``n`` items (NaN when n is 0)."""
    if not 0.0 <= p <= 1.0 or n < 0:
        raise ValueError(f"need 0 <= p <= 1 and n >= 0, got p={p}, n={n}")
    return math.sqrt(p * (1.0 - p) / n) if n else math.nan


def mean_se(values: ArrayLike | Sequence[float]) -> float:
    """The standard error of the mean of ``values`` (NaN with fewer than two)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return math.nan
    return float(data.std(ddof=1)) / math.sqrt(data.size)


def paired_se(a: ArrayLike | Sequence[float], b: ArrayLike | Sequence[float]) -> float:
    """The standard error of mean(a) - mean(b), ``a[i]`` and ``b[i]`` measured on the same
    item (booleans count as 0/1)."""
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"paired values need the same shape, got {first.shape} and {second.shape}")
    return mean_se(first - second)


def auroc_se(auroc: float, *, positives: int, negatives: int) -> float:
    """Hanley & McNeil's standard error of an AUROC measured on ``positives`` and
    ``negatives`` items (NaN when either is 0)."""
    if not positives or not negatives:
        return math.nan
    a = auroc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (
        positives * negatives
    )
    return math.sqrt(max(var, 0.0))


def lift_se(
    kept: ArrayLike, local: ArrayLike, cloud: ArrayLike, *, draws: int = 1000, seed: int = 0
) -> float:
    """The bootstrap standard error of the lift: the accuracy of keeping ``kept`` local (the
    rest to the cloud) minus random routing of the same share, ``local`` and ``cloud`` each
    question's correctness there (NaN with fewer than two questions)."""
    k, lo, cl = (np.asarray(v, dtype=bool) for v in (kept, local, cloud))
    if not k.shape == lo.shape == cl.shape:
        raise ValueError(f"need one value per question, got {k.shape}, {lo.shape}, {cl.shape}")
    if k.size < 2:
        return math.nan
    index = np.random.default_rng(seed).integers(0, k.size, size=(draws, k.size))
    kd, ld, cd = k[index], lo[index], cl[index]
    system = np.where(kd, ld, cd).mean(axis=1)
    share = kd.mean(axis=1)
    lift = system - ((1.0 - share) * cd.mean(axis=1) + share * ld.mean(axis=1))
    return float(lift.std(ddof=1))
