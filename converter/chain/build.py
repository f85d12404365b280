"""``foggen model build``: a chain round's GGUF from the committed adapters, without torch.

The embedded base GGUF is dequantized with gguf (``converter.to_hf``: the chain's own start),
each published adapter is merged in order in numpy (``converter.lora.merge_checkpoint``, the
chain's own merge, kept in F32 between rounds as in the chain), the result is exported to F32
GGUF and quantized to Q4_K_M with llama.cpp. Proof of identity: the F32 GGUF's sha256 must
equal the one the chain recorded for the checkpoint it trained and benched (so every tensor is
bit-equal, a stricter bar than the converter's verify); the Q4_K_M hash is compared too.

Every step gives the same bits on any x86_64 CPU: dequantize (gguf's numpy kernels)
and export are elementwise IEEE operations; the merge is a fixed-order float64 sum without BLAS
(``converter.lora.merge_weight``); llama.cpp's quantizer runs in ggml-base, built for baseline
x86-64 (no FMA, no -march=native), one row block at a time whatever the thread count.
:func:`rerecord_hashes` re-records a published chain's hashes when the converter's output
changes on purpose (done once, for the deterministic merge).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from converter.chain.context import MANIFEST, hash_file, round_name
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


def _check_rounds(chain_dir: Path, round_number: int | None) -> int:
    rounds = published_rounds(chain_dir)
    if not rounds:
        raise ChainBuildError(f"no published rounds in {chain_dir} - run foggen chain --publish")
    n = rounds[-1] if round_number is None else round_number
    if list(range(n + 1)) != [r for r in rounds if r <= n]:
        raise ChainBuildError(f"{chain_dir} lacks some of rounds 0..{n}: has {rounds}")
    return n


def _start_gguf(chain_dir: Path, home: Path, base_gguf: Path | None) -> Path:
    from edge_runtime.models import fetch_embedded

    start = _manifest(chain_dir, 0)["steps"]["start"]
    base = base_gguf or fetch_embedded(home=home)
    if start.get("base_gguf_sha256") != hash_file(base):
        raise ChainBuildError(
            f"this chain did not start from {base} (it started from {start.get('base')}) - "
            "pass the GGUF it started from"
        )
    return base


def _start_checkpoint(base: Path, tmp: Path) -> Path:
    """The chain's own start: the base GGUF dequantized to an HF checkpoint."""
    from converter.to_hf import gguf_to_hf

    return gguf_to_hf(base, tmp / round_name(0), progress=False)


def _merged_rounds(
    chain_dir: Path, start: Path, tmp: Path, last: int
) -> Iterator[tuple[int, Path]]:
    """The chain's own merges from the ``start`` checkpoint: (r, the checkpoint after round
    r's adapter) for r = 0..last, each folder (``start`` included) removed once the next one
    is written."""
    from converter.lora import merge_checkpoint

    current = start
    for r in range(last + 1):
        merged = merge_checkpoint(
            current, chain_dir / round_name(r), tmp / round_name(r + 1), dtype="F32"
        )
        shutil.rmtree(current)
        current = merged
        yield r, current


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
    from converter.quantize import QuantType, quantize
    from edge_runtime.models import chain_model_path

    n = _check_rounds(chain_dir, round_number)
    base = _start_gguf(chain_dir, home, base_gguf)
    expected = _manifest(chain_dir, n)["steps"].get("export")
    if expected is None:
        raise ChainBuildError(f"round {n} in {chain_dir} has no export step - let the chain finish")
    out = chain_model_path(f"chain:{n}", home=home)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foggen-build-", dir=out.parent) as tmp:
        start = _start_checkpoint(base, Path(tmp))
        *_, (_, current) = _merged_rounds(chain_dir, start, Path(tmp), n)  # after round n
        f32 = export_gguf(
            current, Path(tmp) / "model-f32.gguf", out_type=OutType.F32, progress=False
        )
        f32_sha = hash_file(f32)
        if f32_sha != expected["f32_sha256"]:
            raise ChainBuildError(
                f"the rebuilt F32 GGUF ({f32_sha[:12]}) differs from the chain's "
                f"({expected['f32_sha256'][:12]}) - the adapters or the converter changed"
            )
        quantize(f32, out, QuantType.Q4_K_M, threads=threads)
    q4_sha = hash_file(out)
    return {
        "round": n,
        "path": str(out),
        "f32_sha256": f32_sha,
        "f32_identical_to_chain": True,
        "q4_k_m_sha256": q4_sha,
        "q4_k_m_identical_to_chain": q4_sha == expected["q4_k_m_sha256"],
        "model_reference": f"chain:{n}",
    }


def rerecord_hashes(
    chain_dir: Path,
    reason: str,
    *,
    home: Path,
    threads: int = 2,
    base_gguf: Path | None = None,
) -> list[dict[str, Any]]:
    """Maintenance, run by hand when the converter's output changes on purpose (never to hide
    a changed adapter): rebuild every published round in one pass and write into its manifest
    the hashes this converter gives - ``steps.merge.sha256`` (the merged F32 safetensors) and
    ``steps.export`` ``f32_sha256`` / ``q4_k_m_sha256`` - with an entry appended to the
    manifest's ``rerecorded`` list: when, why, the previous hashes. The adapters, and the
    bench figures and ``steps.bench.gguf_sha256``, stay those of the file the chain trained
    and benched. The start's export (no merge) is checked, not re-recorded. Run once for the
    deterministic merge::

        python -c "from pathlib import Path; from converter.chain.build import rerecord_hashes;
        from edge_runtime.config import foggen_home; print(rerecord_hashes(Path('models/chain'),
        'REASON', home=foggen_home()))"
    """
    last = _check_rounds(chain_dir, None)
    base = _start_gguf(chain_dir, home, base_gguf)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    changes = []
    tmp_parent = home / "models"
    tmp_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="foggen-rerecord-", dir=tmp_parent) as tmp_dir:
        tmp = Path(tmp_dir)
        start = _manifest(chain_dir, 0)["steps"]["start"]["export"]
        start_checkpoint = _start_checkpoint(base, tmp)
        start_f32, start_q4 = _export_hashes(start_checkpoint, tmp, threads)
        if (start_f32, start_q4) != (start["f32_sha256"], start["q4_k_m_sha256"]):
            raise ChainBuildError(
                f"the start's export ({start_f32[:12]}, {start_q4[:12]}) differs from the "
                f"chain's ({start['f32_sha256'][:12]}, {start['q4_k_m_sha256'][:12]}) - "
                "dequantize or export changed, not only the merge"
            )
        for r, checkpoint in _merged_rounds(chain_dir, start_checkpoint, tmp, last):
            f32_sha, q4_sha = _export_hashes(checkpoint, tmp, threads)
            new = {
                "merge_sha256": hash_file(checkpoint / "model.safetensors"),
                "f32_sha256": f32_sha,
                "q4_k_m_sha256": q4_sha,
            }
            changes.append(_rerecord(chain_dir / round_name(r) / MANIFEST, r, new, at, reason))
    return changes


def _export_hashes(checkpoint: Path, tmp: Path, threads: int) -> tuple[str, str]:
    """The sha256 of the checkpoint's F32 GGUF and of its Q4_K_M."""
    from converter.gguf_export import OutType, export_gguf
    from converter.quantize import QuantType, quantize

    f32 = export_gguf(checkpoint, tmp / "f32.gguf", out_type=OutType.F32, progress=False)
    q4 = quantize(f32, tmp / "q4_k_m.gguf", QuantType.Q4_K_M, threads=threads).path
    return hash_file(f32), hash_file(q4)


def _rerecord(path: Path, r: int, new: dict[str, str], at: str, reason: str) -> dict[str, Any]:
    """Write ``new`` hashes into one round's manifest (the previous ones kept); the change."""
    manifest = json.loads(path.read_text())
    steps = manifest["steps"]
    previous = {
        "merge_sha256": steps["merge"]["sha256"],
        "f32_sha256": steps["export"]["f32_sha256"],
        "q4_k_m_sha256": steps["export"]["q4_k_m_sha256"],
    }
    if new != previous:
        steps["merge"]["sha256"] = new["merge_sha256"]
        steps["export"]["f32_sha256"] = new["f32_sha256"]
        steps["export"]["q4_k_m_sha256"] = new["q4_k_m_sha256"]
        record = {"at": at, "reason": reason, "previous": previous}
        manifest["rerecorded"] = [*manifest.get("rerecorded", []), record]
        path.write_text(json.dumps(manifest, indent=1))
    return {"round": r, "previous": previous, "new": new}
