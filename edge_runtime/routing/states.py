"""Layer states of many fast passes, stored compactly: what a layer probe is fitted on.

A label run (``benchmarks/labels.py``) captures every layer's output at the two positions of
:data:`edge_runtime.decoding.POSITIONS` for thousands of questions: for the 1.5B that is 28
layers x 2 positions x 1,536 floats a question, ~170 kB in float16, ~820 MB for the 4,766
labelled questions. JSON rows (``edge_runtime.routing.passes``) would be 4/3 larger and slow to
read, so the states go to numpy ``.npz`` chunks instead::

    $FOGGEN_HOME/states/<model sha256>/<settings fingerprint>/chunk-00000.npz

Each chunk holds ``keys`` (the questions' :func:`question_key`), ``layers`` (the layer indices)
and per position a float16 array (questions, layers, n_embd) with a power-of-two exponent per
row (``<position>_exp``): Gemma's residual stream reaches 4e4, near float16's 65,504, so a row
whose largest value passes 2**14 is stored halved as often as needed (exact in binary
floating point; the 1.5B's rows stay < 200 and are never scaled). A chunk is written once,
atomically, and never changed, so an interrupted run loses at most the chunk it was filling
and resumes after the last one written; the pass rows themselves are in the pass store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.decoding import POSITIONS, EdgeResult
from edge_runtime.question import Question
from edge_runtime.routing.passes import question_key

STATES_DIR = "states"
CHUNK = re.compile(r"chunk-(\d{5})\.npz")


class StateStoreError(ValueError):
    """A chunk that does not fit the store (other layers, widths or a damaged file)."""


def states_path(home: Path, model_sha256: str, settings: str) -> Path:
    return home / STATES_DIR / model_sha256 / settings


HALF_LIMIT = 2.0**14  # a stored row's largest magnitude (float16 holds up to 65,504)


def to_half(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float16 rows (..., n_embd) and each row's exponent e: the row is ``half * 2**e``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = np.nanmax(np.abs(np.where(np.isnan(rows), 0.0, rows)), axis=-1)
        exponent = np.maximum(0, np.ceil(np.log2(np.maximum(peak, 1.0) / HALF_LIMIT)))
    exponent = exponent.astype(np.int8)
    return np.ldexp(rows, -exponent[..., None].astype(np.int32)).astype("<f2"), exponent


def from_half(half: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    return np.ldexp(half.astype(np.float32), exponent[..., None].astype(np.int32))


class StateStore:
    """The captured layers of one model's passes under one settings fingerprint."""

    def __init__(self, directory: Path, *, chunk_size: int = 64) -> None:
        self.directory = directory
        self.chunk_size = chunk_size
        self._index: dict[str, tuple[Path, int]] = {}  # key -> (chunk, row)
        self._pending: list[tuple[str, dict[str, np.ndarray]]] = []
        self.layers: tuple[int, ...] | None = None
        for path in self.chunks():
            with np.load(path) as data:
                self._check_layers(tuple(int(x) for x in data["layers"]), path)
                for row, key in enumerate(data["keys"].tolist()):
                    self._index[str(key)] = (path, row)

    def chunks(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if CHUNK.fullmatch(p.name))

    def _check_layers(self, layers: tuple[int, ...], source: object) -> None:
        if self.layers is None:
            self.layers = layers
        elif layers != self.layers:
            raise StateStoreError(f"{source}: layers {layers}, the store holds {self.layers}")

    def __contains__(self, question: Question) -> bool:
        key = question_key(question)
        return key in self._index or any(k == key for k, _ in self._pending)

    def __len__(self) -> int:
        return len(self._index) + len(self._pending)

    def add(self, question: Question, result: EdgeResult, layers: Sequence[int]) -> None:
        """Keep one pass's captured layers; a chunk is written every ``chunk_size`` passes."""
        if result.layers is None or set(result.layers) != set(POSITIONS):
            raise StateStoreError("the pass has no captured layers at both positions")
        self._check_layers(tuple(layers), "the pass")
        self._pending.append((question_key(question), result.layers))
        if len(self._pending) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        """Write what is pending as a new chunk (atomically: a temporary file, then rename)."""
        if not self._pending:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        taken = [int(m.group(1)) for p in self.chunks() if (m := CHUNK.fullmatch(p.name))]
        path = self.directory / f"chunk-{max(taken, default=-1) + 1:05d}.npz"
        arrays: dict[str, Any] = {}
        for position in POSITIONS:
            rows = np.stack([layers[position] for _, layers in self._pending])
            arrays[position], arrays[f"{position}_exp"] = to_half(rows)
        keys = np.array([key for key, _ in self._pending])
        arrays["keys"], arrays["layers"] = keys, np.array(self.layers, dtype=np.int32)
        temporary = path.with_name(path.name + ".part")
        with temporary.open("wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        for row, key in enumerate(keys.tolist()):
            self._index[str(key)] = (path, row)
        self._pending = []

    def read(
        self, questions: Iterable[Question], position: str, layers: Sequence[int]
    ) -> np.ndarray:
        """float32 (questions, len(layers), n_embd) at ``position`` (each must be stored; NaN
        rows where a layer has no state, e.g. the last one at the question's end)."""
        if self.layers is None:
            raise StateStoreError(f"no states in {self.directory}")
        columns = [self.layers.index(il) for il in layers]
        wanted = [self._index[question_key(q)] for q in questions]
        by_chunk: dict[Path, list[tuple[int, int]]] = {}
        for n, (path, row) in enumerate(wanted):
            by_chunk.setdefault(path, []).append((n, row))
        out: np.ndarray | None = None
        for path, places in by_chunk.items():
            with np.load(path) as data:
                block = from_half(data[position][:, columns], data[f"{position}_exp"][:, columns])
            if out is None:
                out = np.empty((len(wanted), len(columns), block.shape[-1]), dtype=np.float32)
            for n, row in places:
                out[n] = block[row]
        if out is None:
            raise StateStoreError("no questions asked")
        return out
