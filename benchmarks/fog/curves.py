"""The fog curves, offline, from each tier's per-question outcome (collected once).

A tier keeps a question when the runtime's routing rule would (``score >= tau``, through
``edge_runtime.routing.metrics``: a missing score is passed up); what it does not keep goes one
tier up, and the top cloud answers the rest. For a kiosk tau and a gateway tau this gives each
tier's share of the questions, its accuracy on what it kept, and the system's accuracy. The
curves sweep the gateway's tau over every distinct score (nothing interpolated); the baselines
are two-tier (kiosk -> cloud, gateway -> cloud) and random routing at the same fractions (its
expected accuracy, exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime.routing.metrics import keeps_local

NEVER = float("inf")  # a tau no score reaches: the tier keeps nothing


@dataclass(frozen=True)
class Tier:
    """One tier's per-question outcome: correct or not, and its routing score."""

    name: str
    correct: np.ndarray  # bool
    score: np.ndarray  # float; NaN where the tier had none

    def keeps(self, tau: float) -> np.ndarray:
        """Which questions this tier keeps at ``tau`` (the runtime's rule; NEVER keeps none)."""
        if tau == NEVER:  # beyond any tau the rule takes: nothing is kept
            return np.zeros(len(self.score), dtype=bool)
        return keeps_local(self.score, tau)

    def thresholds(self) -> list[float]:
        return [*np.unique(self.score[~np.isnan(self.score)]).tolist(), NEVER]


@dataclass(frozen=True)
class Point:
    kiosk: float  # fraction each tier answered
    gateway: float
    cloud: float
    accuracy: float  # system
    kiosk_accuracy: float | None  # on what that tier kept
    gateway_accuracy: float | None
    cloud_accuracy: float | None
    tau_kiosk: float
    tau_gateway: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: a tau no score reaches (keep nothing) is null."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("tau_kiosk", "tau_gateway"):
            data[name] = None if data[name] == NEVER else data[name]
        return data


def _mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return float(values[mask].mean()) if mask.any() else None


def point(kiosk: Tier, gateway: Tier, cloud: np.ndarray, tau_k: float, tau_g: float) -> Point:
    at_k = kiosk.keeps(tau_k)
    at_g = ~at_k & gateway.keeps(tau_g)
    at_c = ~at_k & ~at_g
    correct = np.where(at_k, kiosk.correct, np.where(at_g, gateway.correct, cloud))
    return Point(
        float(at_k.mean()), float(at_g.mean()), float(at_c.mean()), float(correct.mean()),
        _mean(kiosk.correct, at_k), _mean(gateway.correct, at_g), _mean(cloud, at_c),
        tau_k, tau_g,
    )  # fmt: skip


def gateway_sweep(kiosk: Tier, gateway: Tier, cloud: np.ndarray, tau_k: float) -> list[Point]:
    """The kiosk at ``tau_k``; the gateway at each of its thresholds."""
    return [point(kiosk, gateway, cloud, tau_k, tau) for tau in gateway.thresholds()]


def kiosk_sweep(kiosk: Tier, cloud: np.ndarray) -> list[Point]:
    """Two tiers, kiosk -> cloud: the gateway keeps nothing."""
    nobody = Tier("none", np.zeros_like(kiosk.correct), np.full(len(cloud), np.nan))
    return [point(kiosk, nobody, cloud, tau, NEVER) for tau in kiosk.thresholds()]


def random_accuracy(kept: Sequence[tuple[float, float]], cloud_accuracy: float) -> float:
    """Expected system accuracy when each tier keeps a random share: ``kept`` is (fraction of
    all questions, that tier's mean accuracy over all questions) per lower tier."""
    up = 1.0 - sum(f for f, _ in kept)
    return sum(f * acc for f, acc in kept) + up * cloud_accuracy


def at_fraction(points: list[Point], target: float) -> Point:
    """The point whose top-cloud fraction is nearest ``target`` (the lower on a tie)."""
    return min(points, key=lambda p: (abs(p.cloud - target), p.cloud))


def least_cloud_within(points: list[Point], floor: float) -> Point | None:
    """The point with the smallest top-cloud fraction whose accuracy is at least ``floor``."""
    good = [p for p in points if p.accuracy >= floor - 1e-12]
    return min(good, key=lambda p: (p.cloud, -p.accuracy)) if good else None


def system_correct(
    kiosk: Tier, gateway: Tier, cloud: np.ndarray, tau_k: float, tau_g: float
) -> np.ndarray:
    at_k = kiosk.keeps(tau_k)
    at_g = ~at_k & gateway.keeps(tau_g)
    return np.where(at_k, kiosk.correct, np.where(at_g, gateway.correct, cloud))
