"""Speed in the same run: fast-mode latency from the accuracy pass, then, on a small fixed
subset, grammar and free decoding, the prompt-eval floor, decode speed, cold start and memory.

Times are reported (median, p95, ratios), never asserted.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from benchmarks.bench.outcomes import Outcome
from benchmarks.latency import cold_start_and_fast_rss, decode_ms_per_token, timed_ms
from benchmarks.report import summary
from edge_runtime.config import Mode
from edge_runtime.question import Question
from edge_runtime.runtime import EdgeRuntime


def fast_speed(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Latency per question of the whole accuracy pass, and its throughput (one question after
    another: the inverse of the mean latency). Cached passes carry the time they took when
    they ran."""
    total_s = sum(o.edge_ms for o in outcomes) / 1000.0
    return {
        "n": len(outcomes),
        "latency_ms": summary([o.edge_ms for o in outcomes]),
        "questions_per_s": round(len(outcomes) / total_s, 2) if total_s else None,
    }


def small_subset_runs(
    runtime: EdgeRuntime, questions: Sequence[Question], *, progress: bool = True
) -> list[dict[str, Any]]:
    """Per question: the floor (whole prompt, nothing cached), fast without and with the
    hidden-state read (in alternating order, so neither always runs second), grammar, free."""
    rows = []
    engine = runtime.engine
    for n, q in enumerate(
        tqdm(questions, desc="speed (fast, grammar, free)", unit="q", disable=not progress)
    ):
        prompt = runtime.prompt_tokens(q)
        engine.reset()
        _, floor_ms = timed_ms(engine.logits_after, prompt)
        row: dict[str, Any] = {
            "id": q.id,
            "domain": q.domain,
            "prompt_tokens": len(prompt),
            "floor_ms": floor_ms,
        }
        for hidden in (False, True) if n % 2 == 0 else (True, False):
            runtime.warm()  # the cache holds the system prompt only, as for a new question
            result, ms = timed_ms(runtime.run_edge, q, mode=Mode.FAST, hidden=hidden)
            row["fast_hidden_ms" if hidden else "fast_ms"] = ms
            row["fast_hidden_letter" if hidden else "fast_letter"] = result.letter
        for mode in (Mode.GRAMMAR, Mode.FREE):
            runtime.warm()
            result, ms = timed_ms(runtime.run_edge, q, mode=mode)
            row[f"{mode.value}_ms"] = ms
            row[f"{mode.value}_letter"] = result.letter
        row.update(
            free_strict=result.strict,
            free_lenient=result.lenient,
            free_output=result.output[:160],
            gold=q.answer,
        )
        rows.append(row)
    return rows


def compliance(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    return {
        "n": n,
        "strict": round(sum(r["free_strict"] for r in rows) / n, 3) if n else None,
        "lenient": round(sum(r["free_lenient"] for r in rows) / n, 3) if n else None,
    }


def engine_speed(
    runtime: EdgeRuntime, rows: Sequence[dict[str, Any]], probe: Question
) -> dict[str, Any]:
    tokens = sum(r["prompt_tokens"] for r in rows)
    floor_s = sum(r["floor_ms"] for r in rows) / 1000.0
    decode_ms = decode_ms_per_token(runtime, probe)
    return {
        "prompt_eval_tokens_per_s": round(tokens / floor_s, 1) if floor_s else None,
        "decode_ms_per_token": decode_ms,
        "decode_tokens_per_s": round(1000.0 / decode_ms, 1) if decode_ms else None,
    }


def mode_latency(rows: Sequence[dict[str, Any]], baseline: Sequence[float] = ()) -> dict[str, Any]:
    """Median/p95 per mode on the small subset, plus the transformers baseline if it ran."""
    table = {
        mode: summary([r[f"{mode}_ms"] for r in rows])
        for mode in ("floor", "fast", "fast_hidden", "grammar", "free")
        if all(f"{mode}_ms" in r for r in rows)
    }
    if baseline:
        table["transformers"] = summary(list(baseline))
    return table


def ratios(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """Ratios of medians on the same questions: how much each alternative costs vs ``fast``."""
    med = {name: value["median"] for name, value in table.items()}
    pairs = [
        ("fast_hidden", "fast"),
        ("grammar", "fast"),
        ("free", "fast"),
        ("fast", "floor"),
        ("transformers", "fast"),
        ("transformers", "free"),
    ]
    return {f"{a} / {b}": round(med[a] / med[b], 2) for a, b in pairs if a in med and med[b]}


def process_figures(model: str | None, threads: int, *, cold_start: bool) -> dict[str, Any]:
    """Cold start and fast-only peak RSS in a fresh interpreter, and this process's peak."""
    figures: dict[str, Any] = {
        "peak_rss_this_process_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
    }
    if cold_start:
        figures.update(cold_start_and_fast_rss(threads, 1, model=model))
    return figures
