"""Layer probes: the part of a version-3 calibrator that reads the middle of the model.

A probe reads the outputs of chosen layers (llama.cpp's ``l_out-<layer>``, the residual stream)
at chosen positions of the fast pass (:data:`edge_runtime.decoding.POSITIONS`: the row where the
letter is read, the last token of the user's message) and adds a logit to the calibrator's
output features. Two kinds, both applied with numpy only:

- ``linear``: one weight vector per read, standardisation and projection folded in:
  ``logit = sum_r u_r . h_r``;
- ``mlp``: the reads concatenated, projected to ``k`` unit-variance principal scores
  (``project``, ``offset``: standardisation and PCA folded into one affine map), then one tanh
  layer: ``logit = w2 . tanh(W1 v + b1)`` with ``v = project @ h + offset``.

The probe is fitted by ``edge_runtime.routing.fit_probe``; its bias lives in the calibrator's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.decoding import POSITIONS

KINDS = ("linear", "mlp")
Vector = NDArray[np.float64]


@dataclass(frozen=True, order=True)
class Read:
    """One layer's output at one position of the pass."""

    layer: int
    position: str

    def __post_init__(self) -> None:
        if self.layer < 0 or self.position not in POSITIONS:
            raise ValueError(f"a read is a layer >= 0 at one of {POSITIONS}, not {self}")

    def __str__(self) -> str:
        return f"{self.position}@{self.layer}"

    @classmethod
    def parse(cls, text: str) -> Read:
        """``position@layer`` (what ``str`` writes)."""
        position, _, layer = text.strip().partition("@")
        if not layer.isdigit():
            raise ValueError(f"a read is position@layer, not {text!r}")
        return cls(int(layer), position)


@dataclass(frozen=True, eq=False)
class Probe:
    """A fitted readout of ``reads`` (each ``width`` floats): see the module's docstring."""

    kind: str
    reads: tuple[Read, ...]
    width: int
    weights: Vector  # linear: (reads, width); mlp: W1 (hidden, k)
    project: Vector | None = None  # mlp: (k, reads * width)
    offset: Vector | None = None  # mlp: (k,)
    b1: Vector | None = None  # mlp: (hidden,)
    w2: Vector | None = None  # mlp: (hidden,)

    def __post_init__(self) -> None:
        if self.kind not in KINDS or not self.reads or len(set(self.reads)) != len(self.reads):
            raise ValueError(f"a probe is one of {KINDS} over distinct reads")
        arrays = [self.weights, self.project, self.offset, self.b1, self.w2]
        if any(a is not None and not np.all(np.isfinite(a)) for a in arrays):
            raise ValueError("probe weights must be finite")
        if self.kind == "linear":
            if self.weights.shape != (len(self.reads), self.width):
                raise ValueError(f"linear weights must be ({len(self.reads)}, {self.width})")
            return
        if self.project is None or self.offset is None or self.b1 is None or self.w2 is None:
            raise ValueError("an mlp probe needs project, offset, b1 and w2")
        k, hidden = len(self.offset), len(self.b1)
        shapes = (self.project.shape, self.weights.shape, self.w2.shape)
        if shapes != ((k, len(self.reads) * self.width), (hidden, k), (hidden,)):
            raise ValueError(f"mlp probe shapes {shapes} do not fit together")

    @property
    def layers(self) -> tuple[int, ...]:
        """The layers the engine must capture for this probe."""
        return tuple(sorted({r.layer for r in self.reads}))

    def logit(self, states: Sequence[Vector]) -> Vector:
        """The probe's logit of each row, from one (n, width) array per read."""
        if len(states) != len(self.reads):
            raise ValueError(f"{len(states)} state arrays for {len(self.reads)} reads")
        rows = [np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in states]
        if any(r.shape[1] != self.width for r in rows):
            raise ValueError(f"the probe reads states of {self.width} floats")
        if self.kind == "linear":
            return sum((r @ w for r, w in zip(rows, self.weights, strict=True)), np.zeros(1))
        assert self.project is not None and self.offset is not None
        assert self.b1 is not None and self.w2 is not None
        v = np.hstack(rows) @ self.project.T + self.offset
        return np.tanh(v @ self.weights.T + self.b1) @ self.w2

    def gather(self, layers: Mapping[str, Vector], captured: Sequence[int]) -> list[Vector]:
        """This probe's states from one pass's captured layers (``EdgeResult.layers``, rows
        in ``captured`` order)."""
        missing = [r for r in self.reads if r.position not in layers or r.layer not in captured]
        if missing:
            raise ValueError(f"the pass did not capture {', '.join(map(str, missing))}")
        return [layers[r.position][list(captured).index(r.layer)] for r in self.reads]

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "reads": [{"layer": r.layer, "position": r.position} for r in self.reads],
            "width": self.width,
            "weights": self.weights.tolist(),
        }
        for name in ("project", "offset", "b1", "w2"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value.tolist()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Probe:
        def array(name: str) -> Vector | None:
            value = data.get(name)
            return None if value is None else np.asarray(value, dtype=np.float64)

        weights = array("weights")
        if weights is None:
            raise ValueError("the probe has no weights")
        return cls(
            kind=str(data["kind"]),
            reads=tuple(Read(int(r["layer"]), str(r["position"])) for r in data["reads"]),
            width=int(data["width"]),
            weights=weights,
            project=array("project"),
            offset=array("offset"),
            b1=array("b1"),
            w2=array("w2"),
        )
