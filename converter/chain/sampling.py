"""The chain's self-sampling step: N schema-forced samples per buffer question, in parallel.

Samples are appended to ``samples.jsonl`` group by group, so a killed step resumes after the
last finished group. The same model is then timed one question at a time on a few questions
(``SampleSettings.group = 1``) for the batched-vs-sequential figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from converter.chain.context import Context, hash_file
from edge_runtime.question import Question
from edge_runtime.sampling import Samples, SampleSettings, SelfSampler

SEQUENTIAL_PROBE = 8  # questions timed one at a time


def _row(q: Question, samples: Samples) -> str:
    assert q.answer is not None
    return json.dumps(
        {
            "id": q.id,
            "domain": q.domain,
            "samples": ["/".join(s) for s in samples.responses],
            "fraction_correct": samples.fraction_correct(q.answer),
            "p_correct": round(samples.p_correct(q.answer), 6),
        }
    )


def _complete(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def finished_ids(path: Path) -> set[str]:
    """The ids already in ``path`` (samples.jsonl); a torn last line is dropped from the file."""
    if not path.is_file():
        return set()
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if _complete(line)]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return {json.loads(line)["id"] for line in lines}


def _timed(sampler: SelfSampler, questions: list[Question]) -> tuple[list[Samples], float]:
    started = time.perf_counter()
    out = [s for group in sampler.groups(questions) for s in sampler.sample(group)]
    return out, time.perf_counter() - started


def sample_buffer(ctx: Context, r: int, model: Path, buffer: list[Question]) -> dict[str, Any]:
    config = ctx.config
    settings = SampleSettings(
        n=config.n_samples, temperature=config.temperature, group=config.group, seed=config.seed + r
    )
    path = ctx.round_dir(r) / "samples.jsonl"
    done = finished_ids(path)
    todo = [q for q in buffer if q.id not in done]
    sampler = SelfSampler(model, settings, n_threads=config.threads)
    seconds = 0.0
    try:
        bar = tqdm(total=len(buffer), initial=len(done), desc=f"sample round {r}", unit="q",
                   disable=not ctx.progress)  # fmt: skip
        with path.open("a", encoding="utf-8") as out, bar:
            for group in sampler.groups(todo):
                samples, dt = _timed(sampler, group)
                seconds += dt
                out.write("".join(_row(q, s) + "\n" for q, s in zip(group, samples, strict=True)))
                out.flush()
                bar.update(len(group))
    finally:
        sampler.close()
    probe = buffer[:SEQUENTIAL_PROBE]
    single = SelfSampler(model, SampleSettings(n=settings.n, group=1), n_threads=config.threads)
    try:
        _, single_seconds = _timed(single, probe)
        batched = SelfSampler(model, settings, n_threads=config.threads)
        try:
            _, batched_seconds = _timed(batched, probe)
        finally:
            batched.close()
    finally:
        single.close()
    return {
        "model": str(model),
        "n": len(buffer),
        "resumed_after": len(done),
        "settings": {"n": settings.n, "temperature": settings.temperature, "group": settings.group},
        "decoding": "trie (fast-mode response trie, tempered restricted softmax)",
        "questions_per_second": round(len(todo) / seconds, 3) if seconds else None,
        "probe": {
            "questions": len(probe),
            "one_at_a_time_qps": round(len(probe) / single_seconds, 3),
            "batched_qps": round(len(probe) / batched_seconds, 3),
        },
        "sha256": hash_file(path),
    }
