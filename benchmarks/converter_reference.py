"""Our converter against llama.cpp's own ``convert_hf_to_gguf.py``, in one run.

    python -m benchmarks.converter_reference [--model NAME | --checkpoint DIR] [--dtype f32]

The reference ships in the llama-cpp-python source distribution of the pinned version; it is
fetched with pip (``pip download --no-binary :all: --no-deps llama-cpp-python==<version>``)
into a work folder, never committed. Both converters run on the same HF checkpoint (default:
the embedded model converted back with ``foggen convert --from-gguf``), each in its own process
timed with GNU time (wall seconds, peak RSS). ``--model`` takes any named model (the
1.5B Qwen2, SmolLM2's Llama): its GGUF is dequantized to a bf16 HF checkpoint first (Gemma by
our own code, Qwen2 / Llama by transformers' GGUF loader). Then: tensor names, shapes, types
and values (bit-equal or max |difference|), and every metadata key and value, with the
differences listed.
Needs the [train] extra (the reference imports torch).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from converter.gguf_reader import GGUFReader
from converter.to_hf import read_fields


def fetch_reference(work: Path) -> Path:
    """The vendored llama.cpp of the installed llama-cpp-python's source distribution."""
    version = metadata.version("llama-cpp-python")
    root = work / f"llama_cpp_python-{version}"
    script = root / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"
    if not script.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"llama-cpp-python=={version}",
                "-d",
                str(work),
            ],
            check=True,
        )
        with tarfile.open(work / f"llama_cpp_python-{version}.tar.gz") as archive:
            archive.extractall(work, filter="data")
    return script


def timed(command: list[str]) -> dict[str, float]:
    """Run with GNU time: wall seconds and peak RSS of that process alone."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report.name, *command], check=True)
        wall, rss_kb = report.read().split()[-2:]
    return {"seconds": float(wall), "peak_rss_mb": round(int(rss_kb) / 1024, 1)}


def compare(reference: Path, ours: Path) -> dict[str, Any]:
    ref, mine = GGUFReader(reference), GGUFReader(ours)
    ref_fields, our_fields = read_fields(ref), read_fields(mine)
    keys = sorted(set(ref_fields) | set(our_fields))
    metadata_diff = {
        k: {"reference": _short(ref_fields.get(k)), "ours": _short(our_fields.get(k))}
        for k in keys
        if ref_fields.get(k) != our_fields.get(k)
    }
    ref_tensors = {t.name: t for t in ref.tensors}
    our_tensors = {t.name: t for t in mine.tensors}
    tensor_diff, max_abs, bit_equal = {}, 0.0, 0
    for name in sorted(set(ref_tensors) | set(our_tensors)):
        a, b = ref_tensors.get(name), our_tensors.get(name)
        if a is None or b is None:
            tensor_diff[name] = "only in " + ("ours" if a is None else "the reference")
            continue
        if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
            tensor_diff[name] = (
                f"{a.tensor_type.name}{list(a.shape)} vs ours {b.tensor_type.name}{list(b.shape)}"
            )
            continue
        if np.array_equal(np.asarray(a.data), np.asarray(b.data)):
            bit_equal += 1
            continue
        va = gguf.quants.dequantize(a.data, a.tensor_type)
        vb = gguf.quants.dequantize(b.data, b.tensor_type)
        diff = float(np.abs(va - vb).max())
        max_abs = max(max_abs, diff)
        tensor_diff[name] = f"values differ, max |d| = {diff:.3g}"
    return {
        "n_tensors": {"reference": len(ref_tensors), "ours": len(our_tensors)},
        "tensors_bit_equal": bit_equal,
        "tensor_differences": tensor_diff,
        "max_abs_value_difference": max_abs,
        "metadata_keys": {"reference": len(ref_fields), "ours": len(our_fields)},
        "metadata_differences": metadata_diff,
    }


def _short(value: Any) -> Any:
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} items]"
    return value


def _checkpoint(given: str | None, model: str, work: Path) -> tuple[Path, dict[str, float]]:
    """The HF checkpoint to convert: the given one, else the named model converted back (and
    how long that took)."""
    checkpoint = Path(given) if given else work / f"{model}-hf"
    if checkpoint.exists():
        return checkpoint, {}
    from edge_runtime.config import foggen_home
    from edge_runtime.models import resolve_model

    source = str(resolve_model(model, home=foggen_home()).path)
    foggen = [sys.executable, "-m", "foggen"]
    return checkpoint, timed(
        [*foggen, "convert", "--from-gguf", source, "--to-hf", str(checkpoint)]
    )


def model_tag(model: str) -> str:
    """The report-name suffix of a named model (none for the embedded one)."""
    return "" if model == "gemma-3-270m" else f"-{model}"  # the embedded model's reports came first


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", help="HF checkpoint folder (default: --model's GGUF, converted back)"
    )
    parser.add_argument("--model", default="gemma-3-270m", help="a named model (foggen model list)")
    parser.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    parser.add_argument("--work", default=".cache/reference", help="where the sdist and outputs go")
    parser.add_argument("--out", help="default: reports/converter-reference[-MODEL]-DTYPE.json")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, to_hf = _checkpoint(args.checkpoint, args.model, work)
    script = fetch_reference(work)
    stem = f"{checkpoint.name}-{args.dtype}"
    ref_out, our_out = work / f"reference-{stem}.gguf", work / f"ours-{stem}.gguf"
    reference = [sys.executable, str(script), str(checkpoint)]
    ours = [sys.executable, "-m", "foggen", "convert", str(checkpoint)]
    timings = {
        "reference": timed([*reference, "--outtype", args.dtype, "--outfile", str(ref_out)]),
        "ours": timed([*ours, "--out", str(our_out), "--dtype", args.dtype]),
    }
    report = {
        "model": None if args.checkpoint else args.model,
        "dtype": args.dtype,
        "checkpoint": str(checkpoint),
        "outputs": {"reference": str(ref_out), "ours": str(our_out)},
        "gguf_to_hf": to_hf,
        "timings": timings,
        **compare(ref_out, our_out),
    }
    tag = f"-{checkpoint.name}" if args.checkpoint else model_tag(args.model)
    out = Path(args.out or f"reports/converter-reference{tag}-{args.dtype}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
