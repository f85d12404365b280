"""What every step of a chain round shares: the work folder's layout, the manifests, and the
bench step it was given. A leaf: it imports no other chain module."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from converter.train_config import ChainBenchConfig, ChainConfig
from edge_runtime.atomic import write_text_atomic
from edge_runtime.models import hash_file

MANIFEST = "manifest.json"

__all__ = ["MANIFEST", "BenchStep", "Context", "fresh", "hash_file", "round_name"]


class BenchStep(Protocol):
    """Benches one checkpoint's GGUF, writes its report to ``out``; the manifest's summary.

    Passed in by the caller (``foggen chain`` gives ``benchmarks.chain_bench.bench_gguf``), so
    the converter never imports the benchmarks."""

    def __call__(
        self, gguf: Path, config: ChainBenchConfig, *, home: Path, out: Path, progress: bool
    ) -> dict[str, Any]: ...


def round_name(r: int) -> str:
    return f"round-{r:02d}"


def fresh(path: Path) -> Path:
    """Remove what a killed step may have left at ``path``."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


@dataclass(frozen=True)
class Context:
    work: Path
    config: ChainConfig
    publish: Path | None
    progress: bool
    bench: BenchStep | None = None  # None: checkpoints are not benched (recorded as skipped)

    def round_dir(self, r: int) -> Path:
        path = self.work / round_name(r)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def checkpoint(self, r: int) -> Path:
        """The HF checkpoint after ``r`` rounds (round-00: the start)."""
        return self.work / "checkpoints" / round_name(r)

    def gguf(self, r: int) -> Path:
        return self.work / "models" / f"{round_name(r)}.gguf"

    def manifest(self, r: int) -> dict[str, Any]:
        path = self.round_dir(r) / MANIFEST
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        return {"round": r, "seed": self.config.seed + r, "steps": {}}

    def save_manifest(self, r: int, manifest: dict[str, Any]) -> None:
        write_text_atomic(self.round_dir(r) / MANIFEST, json.dumps(manifest, indent=1))


Step = Callable[[Context, int], dict[str, Any]]
