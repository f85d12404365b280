"""What a bench chooses on the calib split and applies to eval, never fitting on eval.

- The calibrated signal: a calibrator fitted on the calib passes of this run (as ``foggen
  calibrator fit`` would), applied to eval; on calib itself its out-of-fold predictions.
- The recommender's operating points: per signal, the tau that routes the target fraction of
  the *calib* questions, applied to eval, with the card table there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from benchmarks.bench import tables
from benchmarks.bench.config import SIGNALS
from benchmarks.bench.outcomes import Outcome
from edge_runtime.routing import metrics
from edge_runtime.routing.calibrator import features
from edge_runtime.routing.fit import cross_validated, fit_calibrator
from edge_runtime.routing.passes import Pass

TARGET_FRACTIONS = (0.7, 0.5)


def _design(passes: Sequence[Pass]) -> tuple[Any, Any]:
    import numpy as np

    rows = [features(p.result, p.question, p.result.n_prompt_tokens or 0) for p in passes]
    x = np.array(rows, dtype=np.float64)
    y = np.array([p.result.letter == p.question.answer for p in passes], dtype=bool)
    return x, y


def calibrated_scores(
    calib: Sequence[Pass], evaluation: Sequence[Pass], *, model_sha256: str
) -> tuple[list[float], list[float], dict[str, Any]]:
    """(out-of-fold p_correct on calib, p_correct on eval, the fit's metadata)."""
    x_calib, y_calib = _design(calib)
    calibrator = fit_calibrator(
        x_calib, y_calib, model_sha256=model_sha256, extra={"mode": "fast", "by": "bench"}
    )
    l2 = float(calibrator.fit["l2"])
    out_of_fold = cross_validated(x_calib, y_calib, l2=l2)
    x_eval, _ = _design(evaluation)
    return out_of_fold.tolist(), calibrator.predict(x_eval).tolist(), dict(calibrator.fit)


def calib_operating_points(
    calib: Sequence[Outcome],
    evaluation: Sequence[Outcome],
    fractions: Sequence[float] = TARGET_FRACTIONS,
) -> dict[str, Any]:
    """Per signal and target: the tau picked on calib, and what it does on eval."""
    result: dict[str, Any] = {}
    for signal in SIGNALS:
        scores = [o.score(signal) for o in calib]
        if all(s is None for s in scores):
            continue
        local = [o.local_correct for o in calib]
        cloud = [o.cloud_correct for o in calib]
        eval_scores = [o.score(signal) for o in evaluation]
        eval_local = [o.local_correct for o in evaluation]
        eval_cloud = [o.cloud_correct for o in evaluation]
        points = {}
        for fraction in fractions:
            pick = metrics.recommend_tau(scores, local, cloud, target_cloud_fraction=fraction)
            point = metrics.operating_point(eval_scores, eval_local, eval_cloud, pick.tau)
            points[f"{fraction:.2f}"] = {
                "tau": pick.tau,
                "calib_cloud_fraction": round(pick.cloud_fraction, 4),
                "calib_note": pick.note,
                "eval": asdict(point),
                "eval_lift_se": lift_standard_error(eval_scores, eval_local, eval_cloud, pick.tau),
                "card": tables.card_table(evaluation, signal=signal, tau=pick.tau),
            }
        result[signal] = points
    return result


def lift_standard_error(
    scores: Sequence[float | None], local: Sequence[bool], cloud: Sequence[bool], tau: float
) -> float | None:
    """The standard error of the lift over random at ``tau`` (points), per question.

    Lift = mean over questions of (routed answer correct) minus the random router's expected
    accuracy at the same fraction, which is a mean of per-question values too:
    f * cloud_i + (1 - f) * local_i. The per-question differences' standard error is the
    lift's (the fraction f is held fixed).
    """
    import numpy as np

    kept = metrics.keeps_local(scores, tau)
    local_a, cloud_a = np.asarray(local, dtype=float), np.asarray(cloud, dtype=float)
    n = len(local_a)
    if n < 2:
        return None
    f = 1.0 - kept.mean()
    routed = np.where(kept, local_a, cloud_a)
    diff = routed - (f * cloud_a + (1.0 - f) * local_a)
    return round(100.0 * float(diff.std(ddof=1)) / float(np.sqrt(n)), 2)
