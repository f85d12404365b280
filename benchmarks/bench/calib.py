"""What a bench chooses on the calib split and applies to eval, never fitting on eval.

- The calibrated signals: calibrators fitted on the calib passes of this run (as ``foggen
  calibrator fit`` would): ``calibrated`` reads the output distributions (version 1),
  ``hidden`` the hidden state too (version 2); applied to eval, on calib their out-of-fold
  predictions. A sanity check fits the hidden one on shuffled calib labels, many times: on
  eval those probes must rank at chance on average. Their spread is the null distribution the
  real probe's AUROC is read against: a random direction of the hidden state also separates
  domains, and the domains differ in accuracy, so one shuffled probe strays from 0.5 by more
  than an AUROC's usual standard error.
- The recommender's operating points: per signal, the tau that routes the target fraction of
  the *calib* questions, applied to eval, with the card table there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from benchmarks import stats
from benchmarks.bench import tables
from benchmarks.bench.config import SIGNALS
from benchmarks.bench.outcomes import Outcome
from edge_runtime.routing import metrics
from edge_runtime.routing.calibrator import features
from edge_runtime.routing.fit import cross_validated, fit_calibrator
from edge_runtime.routing.fit_hidden import fit_hidden_calibrator
from edge_runtime.routing.fit_hidden import out_of_fold as out_of_fold_hidden
from edge_runtime.routing.passes import Pass

TARGET_FRACTIONS = (0.7, 0.5)


SHUFFLE_SEED = 20261130
SHUFFLES = 20


def design(passes: Sequence[Pass]) -> tuple[Any, Any, Any]:
    import numpy as np

    rows = [features(p.result, p.question, p.result.n_prompt_tokens or 0) for p in passes]
    x = np.array(rows, dtype=np.float64)
    y = np.array([p.result.letter == p.question.answer for p in passes], dtype=bool)
    missing = any(p.result.hidden is None for p in passes)
    hidden = None if missing else np.array([p.result.hidden for p in passes], dtype=np.float64)
    return x, y, hidden


@dataclass(frozen=True)
class CalibratedScores:
    """Per calibrated signal: out-of-fold p_correct on calib, p_correct on eval, the fit."""

    calib: dict[str, list[float]]
    evaluation: dict[str, list[float]]
    fits: dict[str, dict[str, Any]]
    shuffled: dict[str, Any] | None  # hidden probes fitted on shuffled calib labels


def calibrated_scores(
    calib: Sequence[Pass], evaluation: Sequence[Pass], *, model_sha256: str
) -> CalibratedScores:
    """Fit both calibrators on calib (the hidden one when every pass holds its state)."""
    import numpy as np

    x_calib, y_calib, h_calib = design(calib)
    x_eval, y_eval, h_eval = design(evaluation)
    extra = {"mode": "fast", "by": "bench"}
    v1 = fit_calibrator(x_calib, y_calib, model_sha256=model_sha256, extra=extra)
    out_of_fold = cross_validated(x_calib, y_calib, l2=float(v1.fit["l2"]))
    scores = CalibratedScores(
        {"calibrated": out_of_fold.tolist()},
        {"calibrated": v1.predict(x_eval).tolist()},
        {"calibrated": dict(v1.fit)},
        None,
    )
    if h_calib is None or h_eval is None:
        return scores
    v2 = fit_hidden_calibrator(x_calib, h_calib, y_calib, model_sha256=model_sha256, extra=extra)
    setting = (int(v2.fit["components"]), float(v2.fit["l2"]))
    scores.calib["hidden"] = out_of_fold_hidden(x_calib, h_calib, y_calib, grid=[setting])[
        setting
    ].tolist()
    scores.evaluation["hidden"] = v2.predict(x_eval, h_eval).tolist()
    scores.fits["hidden"] = dict(v2.fit)
    shuffled = shuffled_label_probes(x_calib, h_calib, y_calib, x_eval, h_eval, y_eval)
    real = metrics.auroc(scores.evaluation["hidden"], y_eval)
    null = shuffled["eval_auroc"]
    shuffled["real_eval_auroc"] = real
    shuffled["real_above_fraction"] = (
        None if real is None else round(float(np.mean([real > a for a in null])), 4)
    )
    return replace(scores, shuffled=shuffled)


def shuffled_label_probes(
    x_calib: Any, h_calib: Any, y_calib: Any, x_eval: Any, h_eval: Any, y_eval: Any
) -> dict[str, Any]:
    """The hidden-state fit on :data:`SHUFFLES` permutations of the calib labels, each
    measured on eval: the AUROCs, their mean and spread."""
    import numpy as np

    rng = np.random.default_rng(SHUFFLE_SEED)
    aurocs, cv = [], []
    for _ in range(SHUFFLES):
        probe = fit_hidden_calibrator(
            x_calib, h_calib, rng.permutation(y_calib), model_sha256="shuffled"
        )
        aurocs.append(metrics.auroc(probe.predict(x_eval, h_eval).tolist(), y_eval))
        cv.append(probe.fit["auroc"])
    values = np.array([a for a in aurocs if a is not None], dtype=np.float64)
    return {
        "seed": SHUFFLE_SEED,
        "n": SHUFFLES,
        "eval_auroc": [None if a is None else round(a, 4) for a in aurocs],
        "eval_auroc_mean": round(float(values.mean()), 4) if len(values) else None,
        "eval_auroc_sd": round(float(values.std(ddof=1)), 4) if len(values) > 1 else None,
        "calib_cv_auroc_mean": round(float(np.mean([c for c in cv if c is not None])), 4),
        "hanley_mcneil_se": auroc_standard_error([0.0] * len(y_eval), y_eval, at=0.5),
    }


def auroc_standard_error(
    scores: Sequence[float], labels: Sequence[bool], *, at: float | None = None
) -> float | None:
    """Hanley & McNeil's (1982) standard error of the AUROC of ``scores`` (or of an AUROC
    ``at`` a given value on these labels), to 0.0001."""
    a = at if at is not None else metrics.auroc(list(scores), list(labels))
    n_pos = sum(bool(v) for v in labels)
    n_neg = len(labels) - n_pos
    if a is None or not n_pos or not n_neg:
        return None
    return round(stats.auroc_se(a, positives=n_pos, negatives=n_neg), 4)


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
    if len(local_a) < 2:
        return None
    f = 1.0 - kept.mean()
    routed = np.where(kept, local_a, cloud_a)
    return round(100.0 * stats.paired_se(routed, f * cloud_a + (1.0 - f) * local_a), 2)
