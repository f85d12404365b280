"""A named model's routing profile (``edge_runtime.routing.profile``) from its labelled passes:
the signal that ranks its answers best there, and per-domain taus at 50 % and 70 % cloud."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge_runtime.routing import metrics
from edge_runtime.routing.calibrator import Calibrator
from edge_runtime.routing.profile import FORMAT, VERSION, Profile, content_sha256
from edge_runtime.routing.rule import Signal
from edge_runtime.routing.taus import FORMAT as TAUS_FORMAT
from edge_runtime.routing.taus import VERSION as TAUS_VERSION

POINTS = {"cloud-50": 0.5, "cloud-70": 0.7}
DEFAULT_POINT = "cloud-50"
CHANCE = 0.56  # below this AUROC a signal is called "at chance" (about 2 SE above 0.5 at n=1,000)
DESCRIBED = {
    Signal.BUCKET: "the confidence bucket it writes",
    Signal.LETTER: "the probability of the letter it answers",
    Signal.CALIBRATED: "p_correct, a probe of its layer outputs (calibrator version 3)",
}


def _tau(scores: np.ndarray, correct: np.ndarray, fraction: float) -> dict[str, Any]:
    pick = metrics.recommend_tau(
        scores.tolist(), correct.tolist(), [True] * len(scores), target_cloud_fraction=fraction
    )
    return {"tau": pick.tau, "cloud_fraction": pick.cloud_fraction, "n": len(scores)}


def tau_table(
    scores: np.ndarray, correct: np.ndarray, domains: Sequence[str], *, signal: Signal,
    sha256: str, fraction: float, source: Mapping[str, Any], p_correct_version: int | None,
) -> dict[str, Any]:  # fmt: skip
    by_domain = np.array(domains)
    table: dict[str, Any] = {
        "format": TAUS_FORMAT,
        "version": TAUS_VERSION,
        "model_sha256": sha256,
        "signal": signal.value,
        "target": {"cloud_fraction": fraction},
        "global": _tau(scores, correct, fraction),
        "domains": {
            d: _tau(scores[by_domain == d], correct[by_domain == d], fraction)
            for d in sorted(set(domains))
        },
        "source": dict(source),
    }
    if signal is Signal.CALIBRATED and p_correct_version is not None:
        table["p_correct_version"] = p_correct_version
    return table


def build_profile(
    *, name: str, sha256: str, signals: Mapping[Signal, np.ndarray], aurocs: Mapping[Signal, float],
    correct: np.ndarray, domains: Sequence[str], calibrator: Calibrator | None,
    source: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The profile on the signal with the best AUROC (ties: the simpler one, in enum order);
    ``signals`` are out-of-fold scores where they were fitted."""
    best = max(aurocs, key=lambda s: (round(aurocs[s], 3), -list(Signal).index(s)))
    version = None if calibrator is None or best is not Signal.CALIBRATED else calibrator.version
    others = ", ".join(f"{s.value} {aurocs[s]:.2f}" for s in aurocs if s is not best)
    note = (
        f"Routes on {DESCRIBED[best]}: on {len(correct)} labelled questions outside eval it "
        f"ranks right answers above wrong ones at AUROC {aurocs[best]:.2f} ({others})."
    )
    if aurocs[best] < CHANCE:
        note += (
            " Every signal of this model is at chance: routing sends the chosen share of "
            "questions up, but cannot tell which of its answers are wrong."
        )
    profile = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "model_sha256": sha256,
        "signal": best.value,
        "calibrator_sha256": (
            content_sha256(calibrator.to_dict()) if version is not None and calibrator else None
        ),
        "default_point": DEFAULT_POINT,
        "points": {
            point: tau_table(
                signals[best],
                correct,
                domains,
                signal=best,
                sha256=sha256,
                fraction=fraction,
                source=source,
                p_correct_version=version,
            )  # fmt: skip
            for point, fraction in POINTS.items()
        },
        "note": note,
        "chosen_on": {"aurocs": {s.value: round(a, 4) for s, a in aurocs.items()}, **source},
    }
    Profile.from_dict(profile, origin="the built profile")  # what we write, the runtime reads
    return profile
