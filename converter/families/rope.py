"""RoPE settings of the decoder families, read from config.json and written the llama.cpp way.

- default: only the base frequency (``rope_theta``);
- linear: ``rope.scaling.type`` / ``rope.scaling.factor`` keys;
- llama3 (Llama 3.1 and later): llama.cpp has no keys for it; the per-frequency divisors are a
  tensor, ``rope_freqs.weight`` (F32, head_dim / 2), computed as the reference converter does.
  Going back (GGUF -> HF) the parameters are recovered from that tensor and checked by
  recomputing it: only the wavelength bounds ``orig / low`` and ``orig / high`` shape it, so
  the usual Llama 3 values are tried first, then the bounds are solved from the interpolated
  divisors; a tensor neither explains is refused, never guessed.
- others (yarn, dynamic, longrope, ...): refused with the ones handled named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from converter.errors import UnsupportedModelError


@dataclass(frozen=True)
class Llama3Rope:
    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int | float

    def to_hf(self, theta: float) -> dict[str, Any]:
        return {
            "rope_type": "llama3",
            "rope_theta": theta,
            "factor": self.factor,
            "low_freq_factor": self.low_freq_factor,
            "high_freq_factor": self.high_freq_factor,
            "original_max_position_embeddings": self.original_max_position_embeddings,
        }


USUAL_LLAMA3 = Llama3Rope(8.0, 1.0, 4.0, 8192)  # Llama 3.1 (3.2 and 3.3: factor 32)


@dataclass(frozen=True)
class Rope:
    theta: float
    linear_factor: float | None = None
    llama3: Llama3Rope | None = None


def read_rope(config: dict[str, Any]) -> Rope:
    """v5's ``rope_parameters`` or v4's ``rope_theta`` + ``rope_scaling``."""
    params: dict[str, Any] = config.get("rope_parameters") or {}
    scaling: dict[str, Any] = params or config.get("rope_scaling") or {}
    theta = float(params.get("rope_theta", config.get("rope_theta")) or 10_000.0)
    kind = scaling.get("rope_type") or scaling.get("type")
    if kind in (None, "default"):
        return Rope(theta)
    if kind == "linear" and scaling.get("factor"):
        return Rope(theta, linear_factor=float(scaling["factor"]))
    if kind == "llama3":
        missing = [k for k in ("factor", "low_freq_factor", "high_freq_factor") if k not in scaling]
        if missing:
            raise UnsupportedModelError(f"llama3 RoPE scaling without {', '.join(missing)}")
        # transformers falls back to max_position_embeddings (the reference converter to 8192;
        # transformers is what the checkpoint was trained and evaluated with)
        original = scaling.get("original_max_position_embeddings") or config.get(
            "max_position_embeddings"
        )
        if not original:
            raise UnsupportedModelError(
                "llama3 RoPE scaling without original_max_position_embeddings"
            )
        llama3 = Llama3Rope(
            float(scaling["factor"]),
            float(scaling["low_freq_factor"]),
            float(scaling["high_freq_factor"]),
            original,
        )
        return Rope(theta, llama3=llama3)
    raise UnsupportedModelError(
        f"RoPE scaling {kind!r} is not handled by this converter (default, linear and llama3 are)"
    )


def _wavelengths(theta: float, head_dim: int) -> np.ndarray:
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    freqs = np.float32(1.0) / np.power(np.float32(theta), exponents, dtype=np.float32)
    return (np.float32(2 * math.pi) / freqs).astype(np.float32)


def llama3_divisors(theta: float, head_dim: int, rope: Llama3Rope) -> np.ndarray:
    """``rope_freqs.weight``: 1 for short wavelengths, ``factor`` for long ones, interpolated
    between (float32 steps, as the reference converter computes it)."""
    wavelen = _wavelengths(theta, head_dim)
    original = np.float32(rope.original_max_position_embeddings)
    low, high = np.float32(rope.low_freq_factor), np.float32(rope.high_freq_factor)
    factor = np.float32(rope.factor)
    with np.errstate(divide="ignore", invalid="ignore"):  # the ends are replaced below
        smooth = (original / wavelen - low) / (high - low)
        between = np.float32(1) / ((np.float32(1) - smooth) / factor + smooth)
    out = np.where(wavelen < original / high, np.float32(1), between)
    return np.where(wavelen > original / low, factor, out).astype(np.float32)


def llama3_from_divisors(divisors: np.ndarray, theta: float, head_dim: int) -> Llama3Rope:
    """The llama3 parameters that reproduce ``divisors`` (a GGUF's rope_freqs.weight)."""
    divisors = np.asarray(divisors, dtype=np.float32).reshape(-1)
    if divisors.shape != (head_dim // 2,):
        raise UnsupportedModelError(
            f"rope_freqs.weight has {divisors.size} values; head_dim {head_dim} needs "
            f"{head_dim // 2}"
        )
    factor = float(divisors.max())
    candidates = [replace(USUAL_LLAMA3, factor=factor)]
    solved = _solve_bounds(divisors, factor, _wavelengths(theta, head_dim))
    if solved is not None:  # round numbers first (a config says 2048, not 2047.9998)
        original = round(float(solved.original_max_position_embeddings))
        high = round(solved.high_freq_factor, 4)
        candidates += [Llama3Rope(factor, 1.0, high, original), solved]
    for candidate in candidates:
        if np.allclose(llama3_divisors(theta, head_dim, candidate), divisors, rtol=1e-5, atol=0):
            return candidate
    raise UnsupportedModelError(
        "rope_freqs.weight is not a llama3 RoPE scaling this converter can recover (it needs "
        "at least two interpolated frequencies, or the usual Llama 3 bounds)"
    )


def _solve_bounds(divisors: np.ndarray, factor: float, wavelen: np.ndarray) -> Llama3Rope | None:
    """From the interpolated divisors: smooth = (1/d - 1/f) / (1 - 1/f) is linear in 1/wavelen,
    smooth = (orig/w - low) / (high - low); written with low = 1, so orig = the long bound."""
    between = (divisors > 1) & (divisors < factor)
    if factor <= 1 or between.sum() < 2:
        return None
    smooth = (1 / divisors[between].astype(np.float64) - 1 / factor) / (1 - 1 / factor)
    slope, intercept = np.polyfit(1 / wavelen[between].astype(np.float64), smooth, 1)
    if slope <= 0 or intercept >= 0:
        return None
    inv_long = -intercept / slope  # 1 / (orig / low)
    inv_short = 1 / slope + inv_long  # 1 / (orig / high)
    original = 1 / inv_long
    return Llama3Rope(factor, 1.0, float(original * inv_short), float(original))
