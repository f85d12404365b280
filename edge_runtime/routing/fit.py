"""Fitting a model's calibrator on the calib split (numpy only; the eval split is never used).

Every calib question goes once through the edge model's fast pass (cached per model, see
:mod:`edge_runtime.routing.passes`); the label is whether the
local letter equals the gold one. The model is an L2-regularised logistic regression over the
standardised features of :func:`edge_runtime.routing.calibrator.features`, fitted by Newton's
method (IRLS). Its AUROC and ECE are measured by stratified k-fold cross-validation on the
same split.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.decoding import EdgeResult
from edge_runtime.provenance import git_commit
from edge_runtime.question import Question
from edge_runtime.routing.calibrator import FEATURE_NAMES, Calibrator, features, sigmoid
from edge_runtime.routing.metrics import auroc, ece
from edge_runtime.routing.passes import PassStore, fast_passes
from edge_runtime.runtime import EdgeRuntime

Matrix = NDArray[np.float64]
Labels = NDArray[np.bool_]
DEFAULT_L2 = 1.0
DEFAULT_FOLDS = 5
# Penalties tried when none is given: the one with the lowest cross-validated log loss wins
# (a strong one when the features carry little: the fit then shrinks to the base rate).
L2_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class Observation:
    """One question's fast pass: the result, its features and whether the letter was right."""

    question: Question
    result: EdgeResult
    x: Matrix
    correct: bool


def observations(
    runtime: EdgeRuntime,
    questions: Iterable[Question],
    *,
    progress: bool = True,
    store: PassStore | None = None,
) -> Iterator[Observation]:
    """Each question's fast pass (from ``store`` when cached there; a progress bar on stderr)."""
    questions = list(questions)
    for question in questions:
        if question.answer is None:
            raise ValueError(f"question {question.id} has no gold answer to calibrate on")
    for item in fast_passes(runtime, questions, store=store, progress=progress):
        result, question = item.result, item.question
        assert result.n_prompt_tokens is not None  # run_edge always sets it
        x = features(result, question, result.n_prompt_tokens)
        yield Observation(question, result, x, result.letter == question.answer)


def observe(
    runtime: EdgeRuntime,
    questions: Iterable[Question],
    *,
    progress: bool = True,
    store: PassStore | None = None,
) -> list[Observation]:
    return list(observations(runtime, questions, progress=progress, store=store))


def design(observations: list[Observation]) -> tuple[Matrix, Labels]:
    x = np.array([o.x for o in observations], dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    return x, np.array([o.correct for o in observations], dtype=bool)


def hidden_design(observations: list[Observation]) -> Matrix:
    """The hidden states of the observations' passes, one row each."""
    missing = sum(o.result.hidden is None for o in observations)
    if missing:
        raise ValueError(f"{missing} of {len(observations)} passes hold no hidden state")
    return np.array([o.result.hidden for o in observations], dtype=np.float64)


def standardisation(x: Matrix) -> tuple[Matrix, Matrix]:
    """Column means and standard deviations (a constant column gets std 1)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def fit_logistic(
    z: Matrix, y: Labels, *, l2: float = DEFAULT_L2, max_iter: int = 100, tol: float = 1e-9
) -> tuple[Matrix, float]:
    """Weights and bias minimising the log loss + l2/2 |w|^2 (bias not penalised), by Newton.

    Each step solves (Z'WZ + l2 I) d = -gradient; a step that does not lower the objective
    is halved, so the iteration cannot diverge.
    """
    if y.all() or not y.any():
        raise ValueError("fitting needs both right and wrong answers among the labels")
    design_z = np.hstack([z, np.ones((len(z), 1))])
    penalty = np.full(design_z.shape[1], l2)
    penalty[-1] = 0.0
    target = y.astype(np.float64)
    theta = np.zeros(design_z.shape[1])

    def objective(t: Matrix) -> float:
        s = design_z @ t
        return float(np.sum(np.logaddexp(0.0, s) - target * s) + 0.5 * np.sum(penalty * t * t))

    current = objective(theta)
    for _ in range(max_iter):
        p = sigmoid(design_z @ theta)
        gradient = design_z.T @ (p - target) + penalty * theta
        hessian = (design_z.T * (p * (1.0 - p))) @ design_z + np.diag(penalty + 1e-10)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6 and objective(theta - scale * step) > current + 1e-12:
            scale /= 2.0
        theta = theta - scale * step
        current = objective(theta)
        if np.max(np.abs(scale * step)) < tol:
            break
    return theta[:-1], float(theta[-1])


def fit_model(x: Matrix, y: Labels, *, model_sha256: str, l2: float = DEFAULT_L2) -> Calibrator:
    """A calibrator (no fit metadata) from raw features and labels."""
    mean, std = standardisation(x)
    weights, bias = fit_logistic((x - mean) / std, y, l2=l2)
    return Calibrator(model_sha256, FEATURE_NAMES, weights, bias, mean, std)


def folds_of(y: Labels, folds: int, *, seed: int = 0) -> NDArray[np.int64]:
    """A fold number per row, stratified by label (shuffled with a fixed seed)."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(y), dtype=np.int64)
    for label in (True, False):
        rows = rng.permutation(np.flatnonzero(y == label))
        assignment[rows] = np.arange(len(rows)) % folds
    return assignment


def cross_validated(
    x: Matrix, y: Labels, *, folds: int = DEFAULT_FOLDS, l2: float = DEFAULT_L2, seed: int = 0
) -> Matrix:
    """Out-of-fold p_correct of every row (each predicted by a model that never saw it).

    With few rows of one class, the folds shrink to that count (each training part keeps both
    classes); fewer than two of either is an error.
    """
    minority = int(min(y.sum(), (~y).sum()))
    if minority < 2:
        raise ValueError(
            f"cross-validation needs at least 2 right and 2 wrong answers, got {int(y.sum())} "
            f"right of {len(y)} - use more questions"
        )
    folds = min(folds, minority)
    assignment = folds_of(y, folds, seed=seed)
    predictions = np.empty(len(y))
    for fold in range(folds):
        held = assignment == fold
        model = fit_model(x[~held], y[~held], model_sha256="cv", l2=l2)
        predictions[held] = model.predict(x[held])
    return predictions


def log_loss(p: Matrix, y: Labels) -> float:
    clipped = np.clip(p, 1e-12, 1.0 - 1e-12)
    return float(-np.mean(np.where(y, np.log(clipped), np.log(1.0 - clipped))))


def choose_l2(
    x: Matrix, y: Labels, *, folds: int = DEFAULT_FOLDS, grid: tuple[float, ...] = L2_GRID
) -> tuple[float, dict[str, float]]:
    """The penalty with the lowest cross-validated log loss, and the loss of each."""
    losses = {l2: log_loss(cross_validated(x, y, folds=folds, l2=l2), y) for l2 in grid}
    best = min(grid, key=lambda l2: (losses[l2], -l2))
    return best, {str(l2): round(loss, 5) for l2, loss in losses.items()}


def fit_calibrator(
    x: Matrix,
    y: Labels,
    *,
    model_sha256: str,
    l2: float | None = None,
    folds: int = DEFAULT_FOLDS,
    split: str = "calib",
    extra: Mapping[str, Any] | None = None,
) -> Calibrator:
    """Fit on every row; AUROC and ECE in the metadata are the k-fold cross-validated ones.

    ``extra`` joins the fit metadata (e.g. the model reference); the git commit is recorded.
    Without ``l2``, the penalty is chosen from :data:`L2_GRID` by cross-validated log loss
    (the reported AUROC/ECE then belong to the chosen one).
    """
    losses: dict[str, float] | None = None
    if l2 is None:
        l2, losses = choose_l2(x, y, folds=folds)
    out_of_fold = cross_validated(x, y, folds=folds, l2=l2)
    model = fit_model(x, y, model_sha256=model_sha256, l2=l2)
    fit = {
        "n": len(y),
        "n_correct": int(y.sum()),
        "split": split,
        "l2": l2,
        "l2_cv_log_loss": losses,
        "cv_log_loss": round(log_loss(out_of_fold, y), 5),
        "cv_folds": min(folds, int(min(y.sum(), (~y).sum()))),
        "auroc": auroc(out_of_fold.tolist(), y),
        "ece": ece(out_of_fold.tolist(), y),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        **(extra or {}),
    }
    return Calibrator(
        model_sha256, FEATURE_NAMES, model.weights, model.bias, model.mean, model.std, fit
    )
