"""Fitting layer probes (calibrator version 3) on labelled passes, by cross-validation.

A setting is a set of reads (layers at positions, see ``edge_runtime.routing.probe``), the
output-feature columns beside them, a kind (``linear`` or ``mlp``), the number ``k`` of
principal components and the L2 penalty. Inside every fold the reads are standardised and
projected on the training part only, so no held-out row shapes its own prediction:

- ``linear``: an L2 logistic regression on [the standardised columns, the ``k`` scores], by
  Newton (:func:`edge_runtime.routing.fit.fit_logistic`), folded into one weight vector per
  read;
- ``mlp``: the columns linearly plus one tanh layer of ``hidden`` units on the scores, full-
  batch Adam with an L2 penalty (hand-written: a few dozen lines of numpy, where a library
  would bring torch or scikit-learn into ``foggen calibrator fit``).

``train_size`` draws that many training rows per fold (the learning curve); held-out rows are
always the whole fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_runtime.routing.calibrator import FEATURE_NAMES, Calibrator, sigmoid
from edge_runtime.routing.fit import Labels, Matrix, fit_logistic, folds_of, standardisation
from edge_runtime.routing.fit_hidden import Projection, principal_projection
from edge_runtime.routing.probe import Probe, Read

DOMAIN_COLUMNS = tuple(n for n in FEATURE_NAMES if n.startswith("domain_"))
MLP_HIDDEN = 32
MLP_STEPS = 400


@dataclass(frozen=True)
class Labelled:
    """Labelled passes: output features (n, F), labels, and the states of each read."""

    x: Matrix
    y: Labels
    states: Mapping[Read, np.ndarray] = field(default_factory=dict)

    def subset(self, rows: np.ndarray) -> Labelled:
        return Labelled(self.x[rows], self.y[rows], {r: s[rows] for r, s in self.states.items()})


@dataclass(frozen=True)
class Setting:
    reads: tuple[Read, ...] = ()
    columns: tuple[str, ...] = FEATURE_NAMES
    kind: str = "linear"
    k: int = 64
    l2: float = 10.0
    hidden: int = MLP_HIDDEN

    def label(self) -> str:
        reads = "+".join(map(str, self.reads)) or "no states"
        columns = (
            "outputs"
            if self.columns == FEATURE_NAMES
            else "domain"
            if self.columns == DOMAIN_COLUMNS
            else f"{len(self.columns)} columns"
        )
        return f"{self.kind} {reads}; {columns}; k={self.k} l2={self.l2:g}"

    @classmethod
    def parse(cls, label: str) -> Setting:
        """The setting a :meth:`label` names (a calibrator's ``fit["setting"]``)."""
        try:
            kind_reads, columns, numbers = (part.strip() for part in label.split(";"))
            kind, reads = kind_reads.split(" ", 1)
            k, l2 = (field.split("=", 1)[1] for field in numbers.split())
            return cls(
                tuple(Read.parse(r) for r in reads.split("+")) if reads != "no states" else (),
                {"outputs": FEATURE_NAMES, "domain": DOMAIN_COLUMNS}[columns],
                kind, int(k), float(l2),
            )  # fmt: skip
        except (ValueError, KeyError) as exc:
            raise ValueError(f"not a probe setting: {label!r}") from exc


def _columns(data: Labelled, columns: Sequence[str]) -> Matrix:
    return data.x[:, [FEATURE_NAMES.index(c) for c in columns]]


def _states(data: Labelled, reads: Sequence[Read]) -> Matrix:
    return np.hstack([np.asarray(data.states[r], dtype=np.float64) for r in reads])


@dataclass(frozen=True)
class Fitted:
    """One fitted setting in its fitting space (before folding into a calibrator)."""

    setting: Setting
    x_mean: Matrix
    x_std: Matrix
    basis: Projection | None
    weights: Matrix  # the columns', then (linear) the scores'
    bias: float
    mlp: tuple[Matrix, Matrix, Matrix] | None = None  # W1, b1, w2

    def predict(self, data: Labelled) -> Matrix:
        zx = (_columns(data, self.setting.columns) - self.x_mean) / self.x_std
        logit = zx @ self.weights[: zx.shape[1]] + self.bias
        if self.basis is not None:
            scores = self.basis(_states(data, self.setting.reads))
            if self.mlp is None:
                logit = logit + scores @ self.weights[zx.shape[1] :]
            else:
                w1, b1, w2 = self.mlp
                logit = logit + np.tanh(scores @ w1.T + b1) @ w2
        return sigmoid(logit)


def fit_setting(data: Labelled, setting: Setting, basis: Projection | None = None) -> Fitted:
    """Fit one setting on every row of ``data`` (``basis``: a wider one fitted on the same
    rows, cut to ``k``)."""
    x_mean, x_std = standardisation(_columns(data, setting.columns))
    zx = (_columns(data, setting.columns) - x_mean) / x_std
    if not setting.reads:
        weights, bias = fit_logistic(zx, data.y, l2=setting.l2)
        return Fitted(setting, x_mean, x_std, None, weights, bias)
    if basis is None:
        basis = principal_projection(_states(data, setting.reads), setting.k, randomized=True)
    basis = basis.first(setting.k)
    scores = basis(_states(data, setting.reads))
    if setting.kind == "linear":
        weights, bias = fit_logistic(np.hstack([zx, scores]), data.y, l2=setting.l2)
        return Fitted(setting, x_mean, x_std, basis, weights, bias)
    wx, bias, mlp = _fit_mlp(zx, scores, data.y, hidden=setting.hidden, l2=setting.l2)
    return Fitted(setting, x_mean, x_std, basis, wx, bias, mlp)


def _fit_mlp(
    zx: Matrix, scores: Matrix, y: Labels, *, hidden: int, l2: float, seed: int = 0
) -> tuple[Matrix, float, tuple[Matrix, Matrix, Matrix]]:
    """logit = wx . zx + w2 . tanh(W1 s + b1) + b, full-batch Adam on the mean log loss plus
    l2 / (2n) times the squared weights."""
    rng = np.random.default_rng(seed)
    n, k = scores.shape
    params = [
        np.zeros(zx.shape[1]),  # wx
        np.zeros(1),  # b
        rng.normal(scale=1.0 / np.sqrt(k), size=(hidden, k)),  # W1
        np.zeros(hidden),  # b1
        rng.normal(scale=0.1 / np.sqrt(hidden), size=hidden),  # w2
    ]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    target, decay = y.astype(np.float64), l2 / n
    for step in range(1, MLP_STEPS + 1):
        wx, b, w1, b1, w2 = params
        a = np.tanh(scores @ w1.T + b1)
        error = (sigmoid(zx @ wx + a @ w2 + b[0]) - target) / n  # d loss / d logit
        back = np.outer(error, w2) * (1.0 - a * a)
        grads = [
            zx.T @ error + decay * wx,
            np.array([error.sum()]),
            back.T @ scores + decay * w1,
            back.sum(axis=0),
            a.T @ error + decay * w2,
        ]
        for p, g, m, v in zip(params, grads, moments, squares, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= 0.01 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    wx, b, w1, b1, w2 = params
    return wx, float(b[0]), (w1, b1, w2)


def out_of_fold(
    data: Labelled,
    settings: Sequence[Setting],
    *,
    folds: int = 5,
    seed: int = 0,
    train_size: int | None = None,
) -> dict[Setting, Matrix]:
    """Out-of-fold p_correct of every row for each setting (settings with the same reads
    share each fold's basis)."""
    assignment = folds_of(data.y, folds, seed=seed)
    rng = np.random.default_rng(seed + 1)
    out = {s: np.empty(len(data.y)) for s in settings}
    for fold in range(folds):
        held = np.flatnonzero(assignment == fold)
        train = np.flatnonzero(assignment != fold)
        if train_size is not None and train_size < len(train):
            train = np.sort(rng.choice(train, train_size, replace=False))
        part, test = data.subset(train), data.subset(held)
        bases: dict[tuple[Read, ...], Projection] = {}
        for setting in settings:
            if setting.reads and setting.reads not in bases:
                widest = max(s.k for s in settings if s.reads == setting.reads)
                states = _states(part, setting.reads)
                bases[setting.reads] = principal_projection(states, widest, randomized=True)
            fitted = fit_setting(part, setting, bases.get(setting.reads))
            out[setting][held] = fitted.predict(test)
    return out


def to_calibrator(fitted: Fitted, *, model_sha256: str, fit: Mapping[str, Any]) -> Calibrator:
    """A fitted setting as a version-3 calibrator (standardisation and projection folded)."""
    setting, n_columns = fitted.setting, len(fitted.setting.columns)
    weights, mean, std = (
        np.zeros(len(FEATURE_NAMES)),
        np.zeros(len(FEATURE_NAMES)),
        np.ones(len(FEATURE_NAMES)),
    )
    index = [FEATURE_NAMES.index(c) for c in setting.columns]
    weights[index], mean[index], std[index] = (
        fitted.weights[:n_columns],
        fitted.x_mean,
        fitted.x_std,
    )
    basis, bias = fitted.basis, fitted.bias
    if basis is None:
        raise ValueError("a version-3 calibrator reads at least one layer")
    width = len(basis.mean) // len(setting.reads)
    project = basis.components / basis.scale[:, None] / basis.std[None, :]
    offset = -project @ basis.mean
    if fitted.mlp is None:
        u = project.T @ fitted.weights[n_columns:]
        bias += float(offset @ fitted.weights[n_columns:])
        probe = Probe("linear", setting.reads, width, u.reshape(len(setting.reads), width))
    else:
        w1, b1, w2 = fitted.mlp
        probe = Probe("mlp", setting.reads, width, w1, project, offset, b1, w2)
    return Calibrator(
        model_sha256,
        FEATURE_NAMES,
        weights,
        bias,
        mean,
        std,
        dict(fit),
        probe=probe,
        domain_fallback=True,
    )
