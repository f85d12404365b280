"""``foggen model build``: a chain round's GGUF from the committed adapters, without torch.

The embedded base GGUF is dequantized with gguf (``converter.to_hf``: the chain's own start),
each published adapter is merged in order in numpy (``converter.lora.merge_checkpoint``, the
chain's own merge, kept in F32 between rounds as in the chain), the result is exported to F32
GGUF and quantized to Q4_K_M with llama.cpp. Proof of identity: the F32 GGUF's sha256 must
equal the one the chain recorded for the checkpoint it trained and benched (so every tensor is
bit-equal, a stricter bar than the converter's verify); the Q4_K_M hash is compared too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from converter.chain.context import MANIFEST, round_name
from converter.chain.context import hash_file as file_sha256  # TODO rename after merge
from converter.errors import ConverterError


class ChainBuildError(ConverterError, ValueError):
    kind = "chain_build"


def published_rounds(chain_dir: Path) -> list[int]:
    return sorted(
        int(p.name.removeprefix("round-"))
        for p in chain_dir.glob("round-*")
        if (p / MANIFEST).is_file()
    )


def _manifest(chain_dir: Path, r: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((chain_dir / round_name(r) / MANIFEST).read_text())
    return data


def build_round(
    chain_dir: Path,
    round_number: int | None,
    *,
    home: Path,
    threads: int = 2,
    base_gguf: Path | None = None,
) -> dict[str, Any]:
    """Build ``chain:N`` into ``home/models`` from ``base_gguf`` (default: the embedded GGUF,
    where the published chain starts); the hashes checked against the chain's."""
    from converter.gguf_export import OutType, export_gguf
    from converter.lora import merge_checkpoint
    from converter.quantize import QuantType, quantize
    from converter.to_hf import gguf_to_hf
    from edge_runtime.models import chain_model_path, fetch_embedded

    rounds = published_rounds(chain_dir)
    if not rounds:
        raise ChainBuildError(f"no published rounds in {chain_dir} - run foggen chain --publish")
    n = rounds[-1] if round_number is None else round_number
    if list(range(n + 1)) != [r for r in rounds if r <= n]:
        raise ChainBuildError(f"{chain_dir} lacks some of rounds 0..{n}: has {rounds}")
    start = _manifest(chain_dir, 0)["steps"]["start"]
    base = base_gguf or fetch_embedded(home=home)
    if start.get("base_gguf_sha256") != file_sha256(base):
        raise ChainBuildError(
            f"this chain did not start from {base} (it started from {start.get('base')}) - "
            "pass the GGUF it started from"
        )
    expected = _manifest(chain_dir, n)["steps"].get("export")
    if expected is None:
        raise ChainBuildError(f"round {n} in {chain_dir} has no export step - let the chain finish")
    out = chain_model_path(f"chain:{n}", home=home)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foggen-build-", dir=out.parent) as tmp:
        current = gguf_to_hf(base, Path(tmp) / round_name(0), progress=False)
        for r in range(n + 1):
            merged = merge_checkpoint(
                current, chain_dir / round_name(r), Path(tmp) / round_name(r + 1), dtype="F32"
            )
            shutil.rmtree(current)
            current = merged
        f32 = export_gguf(
            current, Path(tmp) / "model-f32.gguf", out_type=OutType.F32, progress=False
        )
        f32_sha = file_sha256(f32)
        if f32_sha != expected["f32_sha256"]:
            raise ChainBuildError(
                f"the rebuilt F32 GGUF ({f32_sha[:12]}) differs from the chain's "
                f"({expected['f32_sha256'][:12]}) - the adapters or the converter changed"
            )
        quantize(f32, out, QuantType.Q4_K_M, threads=threads)
    q4_sha = file_sha256(out)
    return {
        "round": n,
        "path": str(out),
        "f32_sha256": f32_sha,
        "f32_identical_to_chain": True,
        "q4_k_m_sha256": q4_sha,
        "q4_k_m_identical_to_chain": q4_sha == expected["q4_k_m_sha256"],
        "model_reference": f"chain:{n}",
    }
