"""Fitting the version-2 calibrator: the output features plus the model's hidden state.

A linear readout of the final hidden state ("does the model know?": P(IK), Kadavath et al.
2022, and the probing work after it) ranks a model's answers better than its output
probabilities. Here, on the calib split only (never eval):

1. the hidden states where the letter is read are standardised per dimension and projected on
   their first ``k`` principal components (an SVD of the standardised calib states), each
   component scaled to unit variance;
2. an L2-regularised logistic regression (:func:`edge_runtime.routing.fit.fit_logistic`) reads
   those ``k`` scores together with the standardised features of version 1;
3. ``k`` and the penalty are chosen together by stratified k-fold cross-validated log loss; the
   standardisation and the projection are refitted inside every fold, so no held-out row shapes
   its own prediction.

Everything before the sigmoid is linear, so the fitted model is stored folded: one weight per
hidden dimension on the raw state, and the bias (see ``edge_runtime.routing.calibrator``).
The reported AUROC/ECE are the chosen setting's out-of-fold ones; since the choice saw the same
folds they lean slightly optimistic (the bench measures on eval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from edge_runtime.provenance import git_commit
from edge_runtime.routing.calibrator import FEATURE_NAMES, HIDDEN_POSITION, Calibrator, sigmoid
from edge_runtime.routing.fit import (
    DEFAULT_FOLDS,
    L2_GRID,
    Labels,
    Matrix,
    fit_logistic,
    folds_of,
    log_loss,
    standardisation,
)
from edge_runtime.routing.metrics import auroc, ece

COMPONENTS_GRID: tuple[int, ...] = (4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Projection:
    """Standardise, project on principal components, scale each score to unit variance."""

    mean: Matrix
    std: Matrix
    components: Matrix  # (k, d), orthonormal rows in the standardised space
    scale: Matrix  # (k,)

    def __call__(self, hidden: Matrix) -> Matrix:
        return ((hidden - self.mean) / self.std) @ self.components.T / self.scale

    def first(self, k: int) -> Projection:
        return Projection(self.mean, self.std, self.components[:k], self.scale[:k])


def principal_projection(
    hidden: Matrix, k: int, *, randomized: bool = False, seed: int = 0
) -> Projection:
    """The first ``k`` principal components of the standardised ``hidden`` rows. With
    ``randomized``, a randomised SVD with two power iterations (Halko et al. 2011) where the
    rows are much wider than ``k``: exact enough for a probe, and cheap when the states are
    several layers wide."""
    mean, std = standardisation(hidden)
    z = (hidden - mean) / std
    k = min(k, *z.shape)
    if randomized and min(z.shape) > 2 * k + 10:
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(z @ rng.normal(size=(z.shape[1], k + 10)))
        for _ in range(2):
            q, _ = np.linalg.qr(z @ (z.T @ q))
        _, _, vt = np.linalg.svd(q.T @ z, full_matrices=False)
    else:
        _, _, vt = np.linalg.svd(z, full_matrices=False)
    components = vt[:k]
    spread = (z @ components.T).std(axis=0)
    return Projection(mean, std, components, np.where(spread > 1e-12, spread, 1.0))


@dataclass(frozen=True)
class _Linear:
    """A fitted readout in the fitting space (before folding)."""

    x_mean: Matrix
    x_std: Matrix
    projection: Projection
    weights: Matrix  # len(features) + k
    bias: float

    def predict(self, x: Matrix, hidden: Matrix) -> Matrix:
        z = np.hstack([(x - self.x_mean) / self.x_std, self.projection(hidden)])
        return sigmoid(z @ self.weights + self.bias)


def _fit(x: Matrix, hidden: Matrix, y: Labels, projection: Projection, l2: float) -> _Linear:
    x_mean, x_std = standardisation(x)
    z = np.hstack([(x - x_mean) / x_std, projection(hidden)])
    weights, bias = fit_logistic(z, y, l2=l2)
    return _Linear(x_mean, x_std, projection, weights, bias)


def out_of_fold(
    x: Matrix,
    hidden: Matrix,
    y: Labels,
    *,
    grid: Sequence[tuple[int, float]],
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> dict[tuple[int, float], Matrix]:
    """Out-of-fold p_correct of every row for each (components, l2) of ``grid``."""
    minority = int(min(y.sum(), (~y).sum()))
    if minority < 2:
        raise ValueError(
            f"cross-validation needs at least 2 right and 2 wrong answers, got {int(y.sum())} "
            f"right of {len(y)} - use more questions"
        )
    assignment = folds_of(y, min(folds, minority), seed=seed)
    predictions = {setting: np.empty(len(y)) for setting in grid}
    widest = max(k for k, _ in grid)
    for fold in np.unique(assignment):
        held = assignment == fold
        full = principal_projection(hidden[~held], widest)  # one SVD per fold
        for k, l2 in grid:
            model = _fit(x[~held], hidden[~held], y[~held], full.first(k), l2)
            predictions[(k, l2)][held] = model.predict(x[held], hidden[held])
    return predictions


def fold_into_calibrator(
    model: _Linear, *, model_sha256: str, fit: Mapping[str, Any]
) -> Calibrator:
    """The fitted readout as a version-2 calibrator (projection folded into hidden weights)."""
    n = len(FEATURE_NAMES)
    p = model.projection
    hidden_weights = (p.components.T @ (model.weights[n:] / p.scale)) / p.std
    bias = model.bias - float(hidden_weights @ p.mean)
    return Calibrator(
        model_sha256,
        FEATURE_NAMES,
        model.weights[:n],
        bias,
        model.x_mean,
        model.x_std,
        dict(fit),
        hidden_weights=hidden_weights,
    )


def fit_hidden_calibrator(
    x: Matrix,
    hidden: Matrix,
    y: Labels,
    *,
    model_sha256: str,
    components: int | None = None,
    l2: float | None = None,
    folds: int = DEFAULT_FOLDS,
    split: str = "calib",
    extra: Mapping[str, Any] | None = None,
) -> Calibrator:
    """Fit on every row, the setting chosen by cross-validated log loss (given ones are kept).

    The metadata holds the chosen ``components`` and ``l2``, the grid's losses, and the
    out-of-fold AUROC/ECE of the chosen setting.
    """
    if hidden.ndim != 2 or len(hidden) != len(y) or len(x) != len(y):
        raise ValueError("features, hidden states and labels need one row per question")
    ks = (components,) if components is not None else COMPONENTS_GRID
    ks = tuple(sorted({min(k, len(y) - 1, hidden.shape[1]) for k in ks}))
    l2s = (l2,) if l2 is not None else L2_GRID
    grid = [(k, penalty) for k in ks for penalty in l2s]
    predictions = out_of_fold(x, hidden, y, grid=grid, folds=folds)
    losses = {setting: log_loss(p, y) for setting, p in predictions.items()}
    best = min(grid, key=lambda s: (losses[s], s[0], -s[1]))  # ties: fewer components, more L2
    chosen = predictions[best]
    model = _fit(x, hidden, y, principal_projection(hidden, best[0]), best[1])
    fit = {
        "signal": "hidden",
        "hidden_position": HIDDEN_POSITION,
        "n": len(y),
        "n_correct": int(y.sum()),
        "split": split,
        "components": best[0],
        "l2": best[1],
        "grid_cv_log_loss": {f"{k}/{p}": round(v, 5) for (k, p), v in losses.items()},
        "cv_log_loss": round(losses[best], 5),
        "cv_folds": min(folds, int(min(y.sum(), (~y).sum()))),
        "auroc": auroc(chosen.tolist(), y),
        "ece": ece(chosen.tolist(), y),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        **(extra or {}),
    }
    return fold_into_calibrator(model, model_sha256=model_sha256, fit=fit)
