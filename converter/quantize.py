"""Quantize a GGUF with llama.cpp itself (``llama_model_quantize``).

K-quants need rows that are multiples of 256; Gemma-3-270M's hidden size is 640, so llama.cpp
falls back to other types for many tensors: the report's tensor-type histogram shows which.

Determinism: ``llama_model_quantize`` quantizes each row on its own (``ggml_quantize_chunk``,
threads split rows, so ``nthread`` cannot change a byte) with the reference C quantizers of
ggml-base, which llama-cpp-python builds for baseline x86-64 (-march=native applies to
ggml-cpu only): SSE2 arithmetic, no FMA to contract into, and from libm only sqrtf, roundf and
lroundf, all exact - the same bytes on any x86_64 CPU, unless ggml-base itself is built with
-march=native or -ffast-math (e.g. through CMAKE_ARGS/CFLAGS).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from converter.errors import CheckpointFormatError, ConverterError
from converter.gguf_export import atomic_output, parse_choice
from edge_runtime.engine import route_llama_logs_to_logging
from edge_runtime.gguf_check import inspect_gguf


class QuantType(str, Enum):
    Q8_0 = "Q8_0"
    Q6_K = "Q6_K"
    Q5_K_M = "Q5_K_M"
    Q4_K_M = "Q4_K_M"
    Q4_0 = "Q4_0"
    # llama.cpp repacks these for faster CPU kernels: IQ4_NL with AVX2 or on ARM (NEON dotprod),
    # like Q4_0 and Q4_K; Q2_K with AVX-512 only. Neither needs an importance matrix.
    IQ4_NL = "IQ4_NL"
    Q2_K = "Q2_K"

    @classmethod
    def parse(cls, text: str) -> QuantType:
        return parse_choice(cls, text, "--type")

    @property
    def llama_ftype(self) -> int:
        import llama_cpp

        return int(getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{self.value}"))


@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    quant_type: QuantType
    size_bytes: int
    source_size_bytes: int
    tensor_types: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "type": self.quant_type.value,
            "size_bytes": self.size_bytes,
            "source_size_bytes": self.source_size_bytes,
            "ratio": round(self.size_bytes / self.source_size_bytes, 4),
            "tensor_types": self.tensor_types,
        }


def quantize(
    source: str | Path, out_path: str | Path, quant_type: QuantType, *, threads: int = 0
) -> QuantizeReport:
    """Quantize ``source`` into ``out_path`` (written atomically)."""
    import llama_cpp

    source, out_path = Path(source), Path(out_path)
    info = inspect_gguf(source)  # typed errors before llama.cpp sees a broken file
    if info.file_type not in ("ALL_F32", "MOSTLY_F16", "MOSTLY_BF16"):
        raise CheckpointFormatError(
            f"{source} is already {info.file_type}; quantize from an F32/F16/BF16 export "
            "(requantizing compounds the error)"
        )
    route_llama_logs_to_logging()  # llama.cpp prints a line per tensor otherwise
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = quant_type.llama_ftype
    params.nthread = threads or (os.cpu_count() or 1)
    with atomic_output(out_path) as tmp:
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(tmp).encode(), ctypes.byref(params)
        )
        if status != 0:
            raise ConverterError(f"llama.cpp failed to quantize {source} (status {status})")
    result = inspect_gguf(out_path)
    return QuantizeReport(out_path, quant_type, result.size, info.size, result.tensor_types)
