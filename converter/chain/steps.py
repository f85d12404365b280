"""The steps of one chain round, each a function (context, round) -> facts for the manifest.

A step writes its outputs first (partial outputs of a killed step are removed on the re-run)
and returns what the manifest records; :class:`converter.chain.runner.Chain` marks it done.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from converter.chain.context import MANIFEST, Context, Step, fresh, hash_file, round_name
from converter.chain.sampling import sample_buffer
from converter.chain.teacher import is_endpoint, sample_with_endpoint
from converter.sft_data import Example, snap_bucket, write_examples
from edge_runtime.mcq import DOMAINS, load_questions
from edge_runtime.question import Question, question_from_json

PUBLISHED_FILES = ("adapter_config.json", "adapter_model.safetensors")


def export_model(ctx: Context, r: int) -> dict[str, Any]:
    """Checkpoint r -> F32 GGUF (hashed, then deleted) -> Q4_K_M GGUF, the runtime's model."""
    from converter.gguf_export import OutType, export_gguf
    from converter.quantize import QuantType, quantize

    out = ctx.gguf(r)
    out.parent.mkdir(parents=True, exist_ok=True)
    f32 = fresh(out.with_suffix(".f32.gguf"))
    export_gguf(ctx.checkpoint(r), f32, out_type=OutType.F32, progress=ctx.progress)
    f32_sha = hash_file(f32)
    quantize(f32, fresh(out), QuantType.Q4_K_M, threads=ctx.config.threads)
    f32.unlink()
    return {"f32_sha256": f32_sha, "q4_k_m_sha256": hash_file(out), "gguf": str(out)}


def bench(ctx: Context, r: int) -> dict[str, Any]:
    """The given bench step on checkpoint r's GGUF; its report goes to ``bench/round-NN``."""
    if ctx.bench is None:
        return {"skipped": "no bench step given"}
    home = ctx.work / "home"
    home.mkdir(exist_ok=True)
    out = fresh(ctx.work / "bench" / round_name(r))
    return ctx.bench(ctx.gguf(r), ctx.config.bench, home=home, out=out, progress=ctx.progress)


# -- the steps --------------------------------------------------------------------------------
def step_start(ctx: Context, r: int) -> dict[str, Any]:
    """The start checkpoint (the embedded GGUF back to HF, or a given folder), exported and
    benched: the 'before' of the first round."""
    target = fresh(ctx.checkpoint(0))
    target.parent.mkdir(parents=True, exist_ok=True)
    base_ref = ctx.config.base
    if base_ref is None or base_ref.endswith(".gguf"):
        from converter.to_hf import gguf_to_hf
        from edge_runtime.config import foggen_home
        from edge_runtime.models import fetch_embedded

        source = fetch_embedded(home=foggen_home()) if base_ref is None else Path(base_ref)
        gguf_to_hf(source, target, progress=ctx.progress)
        base = {"base": base_ref or "embedded", "base_gguf_sha256": hash_file(source)}
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
    return {"n": len(questions), "domains": counts, "sha256": hash_file(path)}


def read_buffer(ctx: Context, r: int) -> list[Question]:
    path = ctx.round_dir(r) / "buffer.jsonl"
    return [question_from_json(line) for line in path.read_text(encoding="utf-8").splitlines()]


def step_sample(ctx: Context, r: int) -> dict[str, Any]:
    """N samples per buffer question: round 0's teacher's if one is set, else the model's own."""
    teacher = ctx.config.teacher if r == 0 else None
    if teacher is not None and is_endpoint(teacher):
        return sample_with_endpoint(ctx, r, teacher, read_buffer(ctx, r))
    model = _teacher_gguf(teacher) if teacher is not None else ctx.gguf(r)
    return sample_buffer(ctx, r, model, read_buffer(ctx, r))


def _teacher_gguf(reference: str) -> Path:
    """A local teacher: any model reference the runtime takes (a name, chain:N, a path)."""
    from edge_runtime.config import foggen_home
    from edge_runtime.models import resolve_model

    return resolve_model(reference, home=foggen_home()).path


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
    return {"n": len(examples), "buckets": counts, "sha256": hash_file(path)}


def step_train(ctx: Context, r: int) -> dict[str, Any]:
    from converter.train import train

    out = fresh(ctx.round_dir(r) / "adapter")
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
    return {**report.to_dict(), "adapter_sha256": hash_file(weights)}


def step_merge(ctx: Context, r: int) -> dict[str, Any]:
    from converter.lora import merge_checkpoint

    out = fresh(ctx.checkpoint(r + 1))
    # F32: a LoRA update is often below bf16's resolution of the weight it is added to
    merge_checkpoint(ctx.checkpoint(r), ctx.round_dir(r) / "adapter", out, dtype="F32")
    return {"checkpoint": str(out), "sha256": hash_file(out / "model.safetensors")}


def step_export(ctx: Context, r: int) -> dict[str, Any]:
    return export_model(ctx, r + 1)


def step_bench(ctx: Context, r: int) -> dict[str, Any]:
    return bench(ctx, r + 1)


def step_publish(ctx: Context, r: int) -> dict[str, Any]:
    """Copy the adapter and the manifest to ``publish/round-NN`` (committed to git)."""
    if ctx.publish is None:
        return {"published": None}
    target = fresh(ctx.publish / round_name(r))
    target.mkdir(parents=True)
    for name in PUBLISHED_FILES:
        shutil.copy(ctx.round_dir(r) / "adapter" / name, target / name)
    manifest = ctx.manifest(r)
    manifest["steps"]["publish"] = {"published": str(target), "at": time.time()}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {"published": str(target)}


STEPS: dict[str, Step] = {
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
