"""The rungs of a ladder: F16 exported by our converter, the others quantized from it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.gguf_export import OutType, export_gguf
from converter.quantize import QuantType, quantize
from converter.to_hf import gguf_to_hf
from edge_runtime.config import foggen_home
from edge_runtime.gguf_check import inspect_gguf
from edge_runtime.models import resolve_model

F16 = "F16"
RUNGS = (F16, "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "IQ4_NL")  # Q2_K: --rungs


@dataclass(frozen=True)
class Rung:
    name: str
    path: Path
    build: dict[str, Any]  # how it was made: from what, seconds (absent when reused)

    @property
    def size_mb(self) -> float:
        return round(self.path.stat().st_size / 2**20, 1)

    def stored_as(self) -> dict[str, int]:
        """The tensor types llama.cpp wrote, most used first, F32 (the norms) left out: where
        a row is not a multiple of 256 a K-quant falls back to a legacy type (Q5_K -> Q5_1)."""
        types = inspect_gguf(self.path).tensor_types
        ordered = sorted(types.items(), key=lambda item: (-item[1], item[0]))
        return {name: count for name, count in ordered if name != "F32"}


def build_rungs(model: str, names: tuple[str, ...], work: Path) -> list[Rung]:
    """Each rung's GGUF in ``work`` (made once; reused while the file is there)."""
    work.mkdir(parents=True, exist_ok=True)
    source = resolve_model(model, home=foggen_home()).path
    checkpoint = work / "hf"
    if not checkpoint.exists():
        gguf_to_hf(source, checkpoint)
    f16 = work / f"{F16}.gguf"
    rungs = [_made(F16, f16, lambda: export_gguf(checkpoint, f16, out_type=OutType.F16), source)]
    for name in names:
        if name == F16:
            continue
        quant = QuantType.parse(name)
        path = work / f"{quant.value}.gguf"
        rungs.append(_made(quant.value, path, lambda q=quant, p=path: quantize(f16, p, q), f16))
    return [r for r in rungs if r.name in names]


def _made(name: str, path: Path, make: Any, source: Path) -> Rung:
    if path.exists():
        return Rung(name, path, {"from": source.name, "reused": True})
    started = time.perf_counter()
    make()
    seconds = round(time.perf_counter() - started, 1)
    return Rung(name, path, {"from": source.name, "seconds": seconds})
