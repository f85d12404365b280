"""Applying a fitted calibrator: the probability that the edge model's answer is right.

The features come from the fast pass the runtime already makes (no extra prompt evaluation):
the bucket distribution and its expectation, the letter distribution over the offered options
(max, margin, normalised entropy), the number of options, the prompt length and the domain.
A calibrator is a logistic model over the standardised features, fitted per GGUF (keyed by its
sha256) by ``edge_runtime.routing.fit`` and stored as a small versioned JSON::

    {"format": "foggen-calibrator", "version": 1, "model_sha256": "...",
     "feature_names": [...], "weights": [...], "bias": b, "mean": [...], "std": [...],
     "fit": {"n": ..., "split": "calib", "auroc": ..., "ece": ..., "created_at": ..., ...}}

Version 2 adds the model's final hidden state where the letter is read (see
``edge_runtime.decoding``): ``"hidden": {"size": d, "position": "letter", "weights": [d]}``.
Its standardisation and projection (PCA, fitted on calib by ``edge_runtime.routing.fit_hidden``)
are linear, so they are folded into those ``d`` weights on the raw hidden state and the bias:
p = sigmoid(w . (x - mean) / std + u . h + b).

Version 3 reads the middle of the model instead: ``"probe": {...}`` (see
``edge_runtime.routing.probe``: chosen layers at chosen positions, linear or a small MLP), and
``"domain_fallback": "mean"``: a question without a known domain gets the training mean of the
domain features (a standardised 0) instead of all zeros. Versions 1 and 2 keep loading.
Applying any of them needs numpy only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.atomic import write_text_atomic
from edge_runtime.decoding import EdgeResult
from edge_runtime.errors import (
    CalibratorFormatError,
    CalibratorHiddenSizeError,
    CalibratorMismatchError,
)
from edge_runtime.mcq import DOMAINS  # a domain outside these gets all-zero domain features
from edge_runtime.question import Question
from edge_runtime.routing.probe import Probe
from edge_runtime.schema import BUCKETS

FORMAT = "foggen-calibrator"
VERSION = 1  # features of the output distributions only
HIDDEN_VERSION = 2  # ... and the hidden state where the letter is read
PROBE_VERSION = 3  # ... or a probe of chosen layers at chosen positions
VERSIONS = (VERSION, HIDDEN_VERSION, PROBE_VERSION)
HIDDEN_POSITION = "letter"  # the token before the letter, whose logits choose it
CALIBRATORS_DIR = "calibrators"
FEATURE_NAMES: tuple[str, ...] = (
    *(f"bucket_p_{b}" for b in BUCKETS),
    "bucket_expectation",
    "letter_max",
    "letter_margin",
    "letter_entropy",
    "n_options",
    "log_prompt_tokens",
    *(f"domain_{d}" for d in DOMAINS),
)

Vector = NDArray[np.float64]


def features(result: EdgeResult, question: Question, n_prompt_tokens: int) -> Vector:
    """The feature vector of one fast pass, in :data:`FEATURE_NAMES` order.

    Needs the bucket and letter distributions, which only fast mode produces.
    """
    if result.bucket_probs is None or not result.letter_probs:
        raise ValueError("calibration features need the distributions of a fast-mode pass")
    buckets = np.array([result.bucket_probs.get(b, 0.0) for b in BUCKETS], dtype=np.float64)
    values = np.array([float(b) for b in BUCKETS], dtype=np.float64)
    letters = np.sort(np.array(list(result.letter_probs.values()), dtype=np.float64))[::-1]
    n = len(letters)
    positive = letters[letters > 0.0]
    entropy = float(-(positive * np.log(positive)).sum() / math.log(n)) if n > 1 else 0.0
    domain = np.array([question.domain == d for d in DOMAINS], dtype=np.float64)
    head = [
        float(buckets @ values),
        float(letters[0]),
        float(letters[0] - letters[1]) if n > 1 else 1.0,
        entropy,
        float(n),
        math.log(max(1, n_prompt_tokens)),
    ]
    return np.concatenate([buckets, head, domain])


def sigmoid(z: Vector) -> Vector:
    return np.exp(-np.logaddexp(0.0, -z))


def shipped_path(sha256: str) -> Path:
    """Where the package keeps the calibrator it ships for a named model."""
    return Path(__file__).resolve().parent.parent / "data" / CALIBRATORS_DIR / f"{sha256}.json"


def shipped_calibrator(sha256: str, *, model_reference: str | None = None) -> Calibrator | None:
    """The calibrator shipped with the package for this model, or None."""
    return Calibrator.checked_at(shipped_path(sha256), sha256, model_reference=model_reference)


def calibrator_path(home: Path, sha256: str) -> Path:
    """Where the calibrator of the model with this sha256 lives in the cache."""
    return home / CALIBRATORS_DIR / f"{sha256}.json"


@dataclass(frozen=True, eq=False)
class Calibrator:
    """Logistic regression over standardised features: p = sigmoid(w . (x - mean) / std + b)."""

    model_sha256: str
    feature_names: tuple[str, ...]
    weights: Vector
    bias: float
    mean: Vector
    std: Vector
    fit: Mapping[str, Any] = field(default_factory=dict)
    hidden_weights: Vector | None = None  # version 2: weights on the raw hidden state
    probe: Probe | None = None  # version 3: a probe of chosen layers
    domain_fallback: bool = False  # version 3: an unknown domain reads as the mean domain

    def __post_init__(self) -> None:
        if self.probe is not None and self.hidden_weights is not None:
            raise ValueError("a calibrator reads the final hidden state or a probe, not both")
        n = len(self.feature_names)
        for name in ("weights", "mean", "std"):
            array = getattr(self, name)
            if array.shape != (n,) or not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must hold {n} finite numbers")
        if not np.all(self.std > 0) or not math.isfinite(self.bias):
            raise ValueError("std must be positive and the bias finite")
        u = self.hidden_weights
        if u is not None and (u.ndim != 1 or not len(u) or not np.all(np.isfinite(u))):
            raise ValueError("hidden weights must be a non-empty vector of finite numbers")

    @property
    def needs_hidden(self) -> bool:
        return self.hidden_weights is not None

    @property
    def layers(self) -> tuple[int, ...]:
        """The layers whose outputs the engine must capture for this calibrator."""
        return () if self.probe is None else self.probe.layers

    @property
    def version(self) -> int:
        """The format version this calibrator is written in (and which signal it reads)."""
        if self.probe is not None:
            return PROBE_VERSION
        return HIDDEN_VERSION if self.needs_hidden else VERSION

    @property
    def hidden_size(self) -> int | None:
        if self.probe is not None:
            return self.probe.width
        return None if self.hidden_weights is None else len(self.hidden_weights)

    def predict(
        self, rows: Vector, hidden: Vector | None = None, states: list[Vector] | None = None
    ) -> Vector:
        """p_correct of each row of a (n, features) matrix (and (n, d) hidden states, or one
        (n, width) array per probe read)."""
        z = (np.atleast_2d(rows) - self.mean) / self.std
        if self.domain_fallback:
            domains = np.array([n.startswith("domain_") for n in self.feature_names])
            unknown = ~np.atleast_2d(rows)[:, domains].any(axis=1)
            z[np.ix_(unknown, domains)] = 0.0
        logit = z @ self.weights + self.bias
        if self.probe is not None:
            if states is None:
                raise ValueError("this calibrator reads layer states: pass them")
            logit = logit + self.probe.logit(states)
        if self.hidden_weights is not None:
            if hidden is None:
                raise ValueError("this calibrator reads the hidden state: pass it")
            logit = (
                logit + np.atleast_2d(np.asarray(hidden, dtype=np.float64)) @ self.hidden_weights
            )
        return sigmoid(logit)

    def p_correct(
        self, x: Vector, hidden: Vector | None = None, states: list[Vector] | None = None
    ) -> float:
        return float(self.predict(x, hidden, states)[0])

    def of_pass(
        self, question: Question, result: EdgeResult, n_tokens: int, captured: Sequence[int]
    ) -> float | None:
        """The probability that a fast pass's answer is right (None: a pass without
        distributions, or without a state this calibrator reads; ``captured``: the layers the
        pass's engine captured, in its order)."""
        if result.bucket_probs is None or not result.letter_probs:
            return None
        if self.needs_hidden and result.hidden is None:
            return None
        states = None
        if self.probe is not None:
            if result.layers is None:
                return None
            states = self.probe.gather(result.layers, captured)
        return self.p_correct(features(result, question, n_tokens), result.hidden, states)

    def check_hidden_size(
        self, size: int, *, source: str = "the calibrator", model_reference: str | None = None
    ) -> None:
        """Refuse a hidden-state calibrator whose width is not the model's."""
        if self.hidden_size is not None and self.hidden_size != size:
            raise CalibratorHiddenSizeError(source, size, self.hidden_size, model_reference)

    def check_model(self, sha256: str, *, model_reference: str | None = None) -> None:
        """Refuse to apply a calibrator fitted for another GGUF."""
        if self.model_sha256 != sha256:
            raise CalibratorMismatchError(self.model_sha256, sha256, model_reference)

    # -- the JSON format ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "model_sha256": self.model_sha256,
            "feature_names": list(self.feature_names),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }
        if self.hidden_weights is not None:
            data["hidden"] = {
                "size": len(self.hidden_weights),
                "position": HIDDEN_POSITION,
                "weights": self.hidden_weights.tolist(),
            }
        if self.probe is not None:
            data["probe"] = self.probe.to_dict()
        if self.domain_fallback:
            data["domain_fallback"] = "mean"
        data["fit"] = dict(self.fit)
        return data

    def save(self, path: Path) -> Path:
        """Write the JSON atomically and durably (see :mod:`edge_runtime.atomic`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(
        cls, data: Any, *, source: str = "<dict>", model_reference: str | None = None
    ) -> Calibrator:
        def refuse(reason: str) -> CalibratorFormatError:
            return CalibratorFormatError(source, reason, model_reference)

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise refuse(f"not a {FORMAT} file")
        version = data.get("version")
        if version not in VERSIONS:
            raise refuse(
                f"version {version!r}, this runtime reads "
                f"{', '.join(map(str, VERSIONS[:-1]))} and {VERSIONS[-1]}"
            )
        names = tuple(data.get("feature_names") or ())
        if names != FEATURE_NAMES:
            raise refuse("its features differ from this runtime's")
        try:
            return cls(
                model_sha256=str(data["model_sha256"]),
                feature_names=names,
                weights=np.asarray(data["weights"], dtype=np.float64),
                bias=float(data["bias"]),
                mean=np.asarray(data["mean"], dtype=np.float64),
                std=np.asarray(data["std"], dtype=np.float64),
                fit=dict(data.get("fit") or {}),
                hidden_weights=_hidden_weights(data) if version == HIDDEN_VERSION else None,
                probe=Probe.from_dict(data["probe"]) if version == PROBE_VERSION else None,
                domain_fallback=data.get("domain_fallback") == "mean",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise refuse(f"bad or missing field ({exc})") from exc

    @classmethod
    def load(cls, path: str | Path, *, model_reference: str | None = None) -> Calibrator:
        """Read and validate a calibrator file (a corrupt or incompatible one is refused;
        a missing one raises FileNotFoundError)."""
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CalibratorFormatError(
                str(path), f"unreadable JSON ({exc})", model_reference
            ) from exc
        return cls.from_dict(data, source=str(path), model_reference=model_reference)

    @classmethod
    def for_model(
        cls, sha256: str, home: Path, *, model_reference: str | None = None
    ) -> Calibrator | None:
        """The cached calibrator of the model with this sha256, or None when there is none."""
        return cls.checked_at(
            calibrator_path(home, sha256), sha256, model_reference=model_reference
        )

    @classmethod
    def checked_at(
        cls, path: Path, sha256: str, *, model_reference: str | None = None
    ) -> Calibrator | None:
        """The calibrator at ``path`` when there is one, refused if fitted for another model."""
        if not path.is_file():
            return None
        calibrator = cls.load(path, model_reference=model_reference)
        calibrator.check_model(sha256, model_reference=model_reference)
        return calibrator


def version_of(calibrator: Calibrator | None) -> int | None:
    """The format version of a calibrator (None without one): which p_correct it gives."""
    return None if calibrator is None else calibrator.version


def _hidden_weights(data: dict[str, Any]) -> Vector:
    hidden = data["hidden"]
    if hidden.get("position") != HIDDEN_POSITION:
        raise ValueError(
            f"hidden state read at {hidden.get('position')!r}, not {HIDDEN_POSITION!r}"
        )
    weights = np.asarray(hidden["weights"], dtype=np.float64)
    if weights.shape != (int(hidden["size"]),):
        raise ValueError(f"{len(weights)} hidden weights for a size of {hidden['size']}")
    return weights
