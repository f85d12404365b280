"""The LM head's arithmetic as llama.cpp does it, for tests that check a hidden state against
the logits it gave: the output matrix dequantized with gguf-py, and the error bound of
llama.cpp quantizing the activation to 8 bits for its dot products."""

from __future__ import annotations

import numpy as np
from gguf.quants import dequantize

from converter.gguf_reader import GGUFReader
from edge_runtime.runtime import EdgeRuntime

# llama.cpp multiplies a quantized weight row by the activation quantized to 8 bits per block
# (Q8_0/Q8_1: 32 values, scale stored as fp16; Q8_K: 256 values): each value is off by at most
# half a step (max |h| in its block / 127) plus the fp16 rounding of the scale (127 * 2^-11 of a
# step). Blocks of 256 give the larger steps, so this bound holds for every weight type.
STEP_FRACTION = 0.5 + 127 * 2.0**-11
BLOCK = 256


def output_rows(runtime: EdgeRuntime, rows: np.ndarray) -> np.ndarray:
    """The output matrix's rows (the token embeddings when tied), dequantized, float64."""
    reader = GGUFReader(runtime.model.file.path)
    tensors = {t.name: t for t in reader.tensors}
    tensor = tensors.get("output.weight") or tensors["token_embd.weight"]
    return dequantize(tensor.data[rows], tensor.tensor_type).astype(np.float64)


def quantization_steps(hidden: np.ndarray) -> np.ndarray:
    """Each value's quantization step (blocks of 256: the larger steps)."""
    blocks = np.abs(hidden.astype(np.float64)).reshape(-1, BLOCK).max(axis=1) / 127.0
    return np.repeat(blocks, BLOCK)


def activation_error_bound(weights: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """The worst case, per logit: every value off by its largest rounding error."""
    step = quantization_steps(hidden) * STEP_FRACTION
    exact = np.abs(weights) @ np.abs(hidden.astype(np.float64))
    return np.abs(weights) @ step + 1e-5 * exact + 1e-4  # float32 accumulation


def typical_error(weights: np.ndarray, hidden: np.ndarray) -> float:
    """The RMS error if each rounding error is uniform on +-step/2 and independent."""
    variance = (weights**2) @ (quantization_steps(hidden) ** 2 / 12.0)
    return float(np.sqrt(variance.mean()))


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2)))
