"""Speed in the same run: fast-mode latency from the accuracy pass, then, on a small fixed
subset, grammar and free decoding, the prompt-eval floor, decode speed, cold start and memory.

Times are reported (median, p95, ratios), never asserted.
"""

from __future__ import annotations

import resource
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from benchmarks.bench.outcomes import Outcome
from benchmarks.latency import cold_start_and_fast_rss, decode_ms_per_token, timed_ms
from benchmarks.report import summary
from edge_runtime.config import Mode
from edge_runtime.question import Question
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.schema import AnswerSchema


def fast_speed(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Latency per question of the whole accuracy pass, and its throughput (one question after
    another: the inverse of the mean latency). Cached passes carry the time they took when
    they ran."""
    total_s = sum(o.edge_ms for o in outcomes) / 1000.0
    guessed = [o.guess_hit for o in outcomes if o.guess_hit is not None]
    counted = [o.decodes for o in outcomes if o.decodes is not None]
    return {
        "n": len(outcomes),
        "latency_ms": summary([o.edge_ms for o in outcomes]),
        "questions_per_s": round(len(outcomes) / total_s, 2) if total_s else None,
        # the share of passes whose guessed bucket was emitted (answered in one decode)
        "guess_hit_rate": round(sum(guessed) / len(guessed), 4) if guessed else None,
        "decodes_per_question": round(sum(counted) / len(counted), 3) if counted else None,
    }


SHORT_QUESTION = 80  # question tokens (after the cached system prompt) of a "short" question


def small_subset_runs(
    runtime: EdgeRuntime, questions: Sequence[Question], *, progress: bool = True
) -> list[dict[str, Any]]:
    """Per question: the floor (whole prompt, nothing cached); the two limits of fast mode,
    after the cached system prompt (the question's tokens with one row of logits; the question
    and the emitted response up to the letter in one decode, logits at its choice points);
    fast without and with the hidden-state capture (two contexts on the same weights); grammar
    and free. Fast, the limits and fast with the capture run in a rotating order, so none
    always runs first."""
    rows = []
    plain = runtime.sibling(capture_hidden=False)
    try:
        for n, q in enumerate(
            tqdm(
                questions,
                desc="speed (limits, fast, grammar, free)",
                unit="q",
                disable=not progress,
            )
        ):
            rows.append(_subset_row(runtime, plain, q, n))
    finally:
        plain.close()
    return rows


def _subset_row(runtime: EdgeRuntime, plain: EdgeRuntime, q: Question, n: int) -> dict[str, Any]:
    engine, prompt = plain.engine, plain.prompt_tokens(q)
    engine.reset()
    _, floor_ms = timed_ms(engine.logits_after, prompt)
    row: dict[str, Any] = {
        "id": q.id,
        "domain": q.domain,
        "prompt_tokens": len(prompt),
        "floor_ms": floor_ms,
    }
    row.update(fast_and_limits(runtime, plain, q, n))
    for mode in (Mode.GRAMMAR, Mode.FREE):
        plain.warm()
        result, ms = timed_ms(plain.run_edge, q, mode=mode)
        row[f"{mode.value}_ms"] = ms
        row[f"{mode.value}_letter"] = result.letter
    row.update(
        free_strict=result.strict,
        free_lenient=result.lenient,
        free_output=result.output[:160],
        gold=q.answer,
    )
    return row


Timed = dict[str, tuple[EdgeRuntime, Callable[[], Any]]]  # name -> (whose cache, the run)


def fast_and_limits(
    runtime: EdgeRuntime, plain: EdgeRuntime, q: Question, n: int, *, more: Timed | None = None
) -> dict[str, Any]:
    """Question n's ``question_limit``, ``schema_limit``, ``fast`` (on ``plain``, a context
    without the capture), ``fast_hidden`` (on ``runtime``, with it) and ``more``, in an order
    rotating with n, each from the cached system prompt; fast runs also give their letter."""
    engine, prompt = plain.engine, plain.prompt_tokens(q)
    plain.warm()
    emitted = plain.run_edge(q, mode=Mode.FAST)  # the response the schema limit evaluates
    trie = plain.response_trie(AnswerSchema.for_options(len(q.choices)))
    points = trie.choice_points(emitted.response_tokens)
    schema_tokens = prompt + list(points[-1])
    schema_rows = [len(prompt) + len(p) - 1 for p in points]
    runs: Timed = {
        "question_limit": (plain, lambda: engine.logits_after(prompt)),
        "schema_limit": (plain, lambda: engine.outputs_after(schema_tokens, schema_rows)),
        "fast": (plain, lambda: plain.run_edge(q, mode=Mode.FAST)),
        "fast_hidden": (runtime, lambda: runtime.run_edge(q, mode=Mode.FAST, hidden=True)),
        **(more or {}),
    }
    row: dict[str, Any] = {"question_tokens": len(prompt) - plain.prefix_length}
    names = list(runs)
    for name in names[n % len(names) :] + names[: n % len(names)]:
        owner, run = runs[name]
        owner.warm()  # the cache holds the system prompt only, as for a new question
        result, row[f"{name}_ms"] = timed_ms(run)
        if name.startswith("fast"):
            row[f"{name}_letter"] = result.letter
            row[f"{name}_guess_hit"] = result.guess_hit
    return row


LIMIT_RATIOS = (
    ("fast", "schema_limit"),
    ("fast", "question_limit"),
    ("schema_limit", "question_limit"),
)


def limit_ratios(
    rows: Sequence[dict[str, Any]], pairs: Sequence[tuple[str, str]] = LIMIT_RATIOS
) -> dict[str, Any]:
    """Fast mode against its limits: medians of the runs in ``pairs`` and their ratios, over all
    questions and the short ones (<= SHORT_QUESTION tokens after the system prompt)."""
    out: dict[str, Any] = {}
    short = [r for r in rows if r["question_tokens"] <= SHORT_QUESTION]
    runs = list(dict.fromkeys(name for pair in pairs for name in pair))
    for label, subset in (("all", rows), ("short", short)):
        if not subset:
            continue
        med = {k: statistics.median(r[f"{k}_ms"] for r in subset) for k in runs}
        out[label] = {
            "n": len(subset),
            "median_ms": {k: round(v, 1) for k, v in med.items()},
            "ratios": {f"{a} / {b}": round(med[a] / med[b], 3) for a, b in pairs},
        }
    return out


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


MODES = ("floor", "question_limit", "schema_limit", "fast", "fast_hidden", "grammar", "free")


def mode_latency(rows: Sequence[dict[str, Any]], baseline: Sequence[float] = ()) -> dict[str, Any]:
    """Median/p95 per mode on the small subset, plus the transformers baseline if it ran."""
    table = {
        mode: summary([r[f"{mode}_ms"] for r in rows])
        for mode in MODES
        if rows and all(f"{mode}_ms" in r for r in rows)
    }
    if baseline:
        table["transformers"] = summary(list(baseline))
    return table


def ratios(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """Ratios of medians on the same questions: how much each alternative costs vs ``fast``."""
    med = {name: value["median"] for name, value in table.items()}
    pairs = [
        ("fast", "schema_limit"),
        ("fast", "question_limit"),
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
