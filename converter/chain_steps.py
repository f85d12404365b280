"""The steps of one chain round, each a function (context, round) -> facts for the manifest.

A step writes its outputs first (partial outputs of a killed step are removed on the re-run)
and returns what the manifest records; :class:`converter.chain.Chain` marks it done.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from benchmarks.data import DOMAINS, load_questions
from converter.chain_bench import bench_gguf
from converter.sft_data import Example, snap_bucket, write_examples
from edge_runtime.question import Question, question_from_json

if TYPE_CHECKING:
    from converter.chain import ChainConfig

MANIFEST = "manifest.json"
PUBLISHED_FILES = ("adapter_config.json", "adapter_model.safetensors")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def round_name(r: int) -> str:
    return f"round-{r:02d}"


@dataclass(frozen=True)
class Context:
    work: Path
    config: ChainConfig
    publish: Path | None
    progress: bool

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
        path = self.round_dir(r) / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(path)


def _fresh(path: Path) -> Path:
    """Remove what a killed step may have left at ``path``."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


def export_model(ctx: Context, r: int) -> dict[str, Any]:
    """Checkpoint r -> F32 GGUF (hashed, then deleted) -> Q4_K_M GGUF, the runtime's model."""
    from converter.gguf_export import OutType, export_gguf
    from converter.quantize import QuantType, quantize

    out = ctx.gguf(r)
    out.parent.mkdir(parents=True, exist_ok=True)
    f32 = _fresh(out.with_suffix(".f32.gguf"))
    export_gguf(ctx.checkpoint(r), f32, out_type=OutType.F32, progress=ctx.progress)
    f32_sha = file_sha256(f32)
    quantize(f32, _fresh(out), QuantType.Q4_K_M, threads=ctx.config.threads)
    f32.unlink()
    return {"f32_sha256": f32_sha, "q4_k_m_sha256": file_sha256(out), "gguf": str(out)}


def bench(ctx: Context, r: int) -> dict[str, Any]:
    """``foggen bench`` on checkpoint r's GGUF; its report goes to ``bench/round-NN``."""
    home = ctx.work / "home"
    home.mkdir(exist_ok=True)
    out = _fresh(ctx.work / "bench" / round_name(r))
    return bench_gguf(ctx.gguf(r), ctx.config.bench, home=home, out=out, progress=ctx.progress)


# -- the steps --------------------------------------------------------------------------------
def step_start(ctx: Context, r: int) -> dict[str, Any]:
    """The start checkpoint (the embedded GGUF back to HF, or a given folder), exported and
    benched: the 'before' of the first round."""
    target = _fresh(ctx.checkpoint(0))
    target.parent.mkdir(parents=True, exist_ok=True)
    base_ref = ctx.config.base
    if base_ref is None or base_ref.endswith(".gguf"):
        from converter.to_hf import gguf_to_hf
        from edge_runtime.config import foggen_home
        from edge_runtime.models import fetch_embedded

        source = fetch_embedded(home=foggen_home()) if base_ref is None else Path(base_ref)
        gguf_to_hf(source, target, progress=ctx.progress)
        base = {"base": base_ref or "embedded", "base_gguf_sha256": file_sha256(source)}
    else:
        shutil.copytree(base_ref, target)
        base = {"base": base_ref}
    return {**base, "export": export_model(ctx, 0), "bench": bench(ctx, 0)}


def select_buffer(r: int, size: int) -> list[Question]:
    """``size`` train-split questions for round ``r``: the domains in an order rotated by r,
    taken round-robin, each domain from its own offset r * size / 7 (cyclic, no repeats)."""
    order = DOMAINS[r % len(DOMAINS) :] + DOMAINS[: r % len(DOMAINS)]
    per = -(-size // len(DOMAINS))
    streams: list[Iterator[Question]] = []
    for domain in order:
        pool = load_questions(domain, "train")
        start = (r * per) % len(pool)
        streams.append(iter(pool[start:] + pool[:start]))
    chosen: list[Question] = []
    while streams and len(chosen) < size:
        for stream in list(streams):
            item = next(stream, None)
            if item is None:
                streams.remove(stream)
            elif len(chosen) < size:
                chosen.append(item)
    return chosen


def step_buffer(ctx: Context, r: int) -> dict[str, Any]:
    questions = select_buffer(r, ctx.config.buffer)
    path = ctx.round_dir(r) / "buffer.jsonl"
    lines = [
        json.dumps(
            {
                "id": q.id,
                "domain": q.domain,
                "question": q.text,
                "choices": list(q.choices),
                "answer": q.answer,
            },
            ensure_ascii=False,
        )
        for q in questions
    ]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    counts = {d: sum(q.domain == d for q in questions) for d in DOMAINS}
    return {"n": len(questions), "domains": counts, "sha256": file_sha256(path)}


def read_buffer(ctx: Context, r: int) -> list[Question]:
    path = ctx.round_dir(r) / "buffer.jsonl"
    return [question_from_json(line) for line in path.read_text(encoding="utf-8").splitlines()]


def step_sample(ctx: Context, r: int) -> dict[str, Any]:
    """N samples per buffer question: round 0's teacher's if one is set, else the model's own."""
    from converter.chain_sampling import sample_buffer
    from converter.chain_teacher import is_endpoint, sample_with_endpoint

    teacher = ctx.config.teacher if r == 0 else None
    if teacher is not None and is_endpoint(teacher):
        return sample_with_endpoint(ctx, r, teacher, read_buffer(ctx, r))
    model = Path(teacher) if teacher is not None else ctx.gguf(r)
    return sample_buffer(ctx, r, model, read_buffer(ctx, r))


def step_label(ctx: Context, r: int) -> dict[str, Any]:
    gold = {q.id: q for q in read_buffer(ctx, r)}
    examples = []
    for line in (ctx.round_dir(r) / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        q = gold[row["id"]]
        assert q.answer is not None  # the bundled train split always has the gold letter
        examples.append(Example(q, snap_bucket(row["fraction_correct"]), q.answer))
    path = ctx.round_dir(r) / "train.jsonl"
    write_examples(path, examples)
    counts = {b: sum(e.bucket == b for e in examples) for b in sorted({e.bucket for e in examples})}
    return {"n": len(examples), "buckets": counts, "sha256": file_sha256(path)}


def step_train(ctx: Context, r: int) -> dict[str, Any]:
    from converter.train import train

    out = _fresh(ctx.round_dir(r) / "adapter")
    config = replace(ctx.config.train, seed=ctx.config.train.seed + r)
    bar = tqdm(desc=f"train round {r}", unit="step", disable=not ctx.progress)

    def on_step(step: int, total: int, loss: float) -> None:
        bar.total = total
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.update(1)

    try:
        report = train(
            ctx.checkpoint(r), ctx.round_dir(r) / "train.jsonl", out, config, on_step=on_step
        )
    finally:
        bar.close()
    weights = out / "adapter_model.safetensors"
    return {**report.to_dict(), "adapter_sha256": file_sha256(weights)}


def step_merge(ctx: Context, r: int) -> dict[str, Any]:
    from converter.lora import merge_checkpoint

    out = _fresh(ctx.checkpoint(r + 1))
    # F32: a LoRA update is often below bf16's resolution of the weight it is added to
    merge_checkpoint(ctx.checkpoint(r), ctx.round_dir(r) / "adapter", out, dtype="F32")
    return {"checkpoint": str(out), "sha256": file_sha256(out / "model.safetensors")}


def step_export(ctx: Context, r: int) -> dict[str, Any]:
    return export_model(ctx, r + 1)


def step_bench(ctx: Context, r: int) -> dict[str, Any]:
    return bench(ctx, r + 1)


def step_publish(ctx: Context, r: int) -> dict[str, Any]:
    """Copy the adapter and the manifest to ``publish/round-NN`` (committed to git)."""
    if ctx.publish is None:
        return {"published": None}
    target = _fresh(ctx.publish / round_name(r))
    target.mkdir(parents=True)
    for name in PUBLISHED_FILES:
        shutil.copy(ctx.round_dir(r) / "adapter" / name, target / name)
    manifest = ctx.manifest(r)
    manifest["steps"]["publish"] = {"published": str(target), "at": time.time()}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {"published": str(target)}


STEPS: dict[str, Callable[[Context, int], dict[str, Any]]] = {
    "start": step_start,
    "buffer": step_buffer,
    "sample": step_sample,
    "label": step_label,
    "train": step_train,
    "merge": step_merge,
    "export": step_export,
    "bench": step_bench,
    "publish": step_publish,
}
