"""Latency of the edge runtime, measured in one run on real eval questions.

    python -m benchmarks.latency [--per-domain 8] [--threads N] [--out reports/latency.json]

Per question: the floor (llama.cpp evaluating the whole prompt once, nothing cached), ``fast``
with the cached system prompt and without it, ``grammar`` and ``free`` (both on the cached
prefix). Prints median / p95 and the ratios, decision agreement between modes and between
cached and uncached evaluation, free-format compliance, peak RSS and cold start, and writes
everything as JSON. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.report import summary as _summary
from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.decoding import EdgeResult
from edge_runtime.mcq import stratified
from edge_runtime.provenance import git_commit as _git_commit
from edge_runtime.question import Question
from edge_runtime.runtime import EdgeRuntime

COLD_START_SCRIPT = """
import json
from edge_runtime.mcq import stratified
from edge_runtime.config import RuntimeConfig
from edge_runtime.runtime import EdgeRuntime
rt = EdgeRuntime.load(RuntimeConfig(n_threads={threads}, model={model!r}))
print(rt.answer("Which gas do plants absorb?", ["Oxygen", "Carbon dioxide"]).answer, flush=True)
for question in stratified({per_domain}):
    rt.answer(question)
# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec and would report the parent's peak
hwm_kb = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps(int(hwm_kb) / 1024), flush=True)
"""


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def timed_ms(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, _ms(time.perf_counter() - started)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cold_start_and_fast_rss(
    threads: int, per_domain: int, repeats: int = 3, *, model: str | None = None
) -> dict[str, float]:
    """In a fresh interpreter (model already assembled): process start to first answer, and the
    peak RSS of a process that only answers in ``fast`` mode (the kiosk's normal life)."""
    times, rss = [], 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                COLD_START_SCRIPT.format(threads=threads, per_domain=per_domain, model=model),
            ],
            stdout=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            proc.stdout.readline()
            times.append(_ms(time.perf_counter() - started))
            rss = max(rss, float(proc.stdout.readline()))
        if proc.returncode:
            raise RuntimeError(f"cold-start process failed with exit code {proc.returncode}")
    return {"cold_start_ms": statistics.median(times), "peak_rss_fast_only_mb": round(rss, 1)}


def decode_ms_per_token(runtime: EdgeRuntime, question: Question, n: int = 32) -> float:
    engine = runtime.engine
    prompt = runtime.prompt_tokens(question)
    engine.logits_after(prompt)
    token = prompt[-1]  # any token of this model's vocabulary: only the step's cost matters
    started = time.perf_counter()
    for _ in range(n):
        engine.append(token)
    return _ms((time.perf_counter() - started) / n)


def measure_question(runtime: EdgeRuntime, uncached: EdgeRuntime, q: Question) -> dict[str, Any]:
    engine = runtime.engine
    prompt = runtime.prompt_tokens(q)
    engine.reset()
    _, floor = timed_ms(engine.logits_after, prompt)
    row: dict[str, Any] = {"id": q.id, "domain": q.domain, "prompt_tokens": len(prompt)}
    row["floor_ms"] = floor
    results: dict[str, EdgeResult] = {}
    for name, rt, mode in (
        ("fast", runtime, Mode.FAST),
        ("fast_uncached", uncached, Mode.FAST),
        ("grammar", runtime, Mode.GRAMMAR),
        ("free", runtime, Mode.FREE),
    ):
        runtime.warm()  # the cache holds the system prompt only, as for a new question
        results[name], row[f"{name}_ms"] = timed_ms(rt.run_edge, q, mode=mode)
    fast, grammar = results["fast"], results["grammar"]
    canonical = engine.tokenize(grammar.output, special=False)
    row.update(
        gold=q.answer,
        fast=fast.output,
        fast_uncached=results["fast_uncached"].output,
        grammar=grammar.output,
        grammar_canonical_tokens=list(grammar.response_tokens) == canonical,
        fast_strict=fast.strict,
        grammar_strict=grammar.strict,
        grammar_pieces=[
            engine.piece(t).decode("utf-8", "replace") for t in grammar.response_tokens
        ],
        free_strict=results["free"].strict,
        free_lenient=results["free"].lenient,
        free_output=results["free"].output[:200],
    )
    return row


def analyse(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def col(name: str) -> list[float]:
        return [r[name] for r in rows]

    latency = {name: _summary(col(f"{name}_ms")) for name in
               ("floor", "fast", "fast_uncached", "grammar", "free")}  # fmt: skip
    med = {name: value["median"] for name, value in latency.items()}
    n = len(rows)
    differing = [r for r in rows if r["fast"] != r["grammar"]]
    return {
        "n_questions": n,
        "latency_ms": latency,
        "ratios_of_medians": {
            "grammar / fast": round(med["grammar"] / med["fast"], 2),
            "free / fast": round(med["free"] / med["fast"], 2),
            "fast / floor": round(med["fast"] / med["floor"], 2),
            "fast_uncached / floor": round(med["fast_uncached"] / med["floor"], 2),
            "fast_uncached / fast": round(med["fast_uncached"] / med["fast"], 2),
        },
        "per_question_ratio_median": {
            "grammar / fast": round(
                statistics.median(r["grammar_ms"] / r["fast_ms"] for r in rows), 2
            ),
            "fast / floor": round(statistics.median(r["fast_ms"] / r["floor_ms"] for r in rows), 2),
        },  # fmt: skip
        "agreement": {
            "fast_vs_grammar_output": round(1 - len(differing) / n, 3),
            "fast_vs_grammar_letter": round(
                sum(r["fast"][-1] == r["grammar"][-1] for r in rows) / n, 3
            ),
            "fast_vs_grammar_bucket": round(
                sum(r["fast"].split("\n")[0] == r["grammar"].split("\n")[0] for r in rows) / n, 3
            ),
            "grammar_non_canonical_tokenization": sum(
                not r["grammar_canonical_tokens"] for r in rows
            ),
            "grammar_pieces_when_differing": Counter(
                "|".join(r["grammar_pieces"]) for r in differing
            ).most_common(5),
            "cached_vs_uncached_fast_changed": sum(r["fast"] != r["fast_uncached"] for r in rows),
        },  # fmt: skip
        "schema_validity": {  # fast and grammar are schema-valid by construction: checked here
            mode: round(sum(r[f"{mode}_strict"] for r in rows) / n, 3)
            for mode in ("fast", "grammar")
        },
        "free_compliance": {
            "strict": round(sum(r["free_strict"] for r in rows) / n, 3),
            "lenient": round(sum(r["free_lenient"] for r in rows) / n, 3),
        },
        "accuracy": {
            mode: round(sum(r[mode][-1] == r["gold"] for r in rows) / n, 3)
            for mode in ("fast", "grammar")
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-domain", type=int, default=8, help="eval questions per domain")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--out", default="reports/latency.json", help="where the JSON goes")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the subprocess runs")
    args = parser.parse_args(argv)
    config = RuntimeConfig.from_env()
    if args.threads:
        config = replace(config, n_threads=args.threads)
    started = time.perf_counter()
    runtime = EdgeRuntime.load(config)
    load_ms = _ms(time.perf_counter() - started)
    rss_after_load = _peak_rss_mb()
    uncached = EdgeRuntime(runtime.engine, runtime.model, replace(config, cache_prefix=False))
    questions = stratified(args.per_domain)
    rows = [measure_question(runtime, uncached, q)
            for q in tqdm(questions, desc="latency", unit="q", file=sys.stderr)]  # fmt: skip
    report = analyse(rows)
    report.update(
        decode_ms_per_token=decode_ms_per_token(runtime, questions[0]),
        prompt_tokens_per_s=round(
            sum(r["prompt_tokens"] for r in rows) / sum(r["floor_ms"] for r in rows) * 1000, 1),
        load_ms=load_ms,
        peak_rss_mb={"after_load": rss_after_load, "after_all_modes": _peak_rss_mb()},
        subprocess=None
        if args.no_cold_start
        else cold_start_and_fast_rss(config.n_threads, args.per_domain),
        machine={"platform": platform.platform(), "processor": platform.processor(),
                 "python": platform.python_version(), "cpu_threads_used": config.n_threads},
        model={"path": str(runtime.model.file.path), "sha256": runtime.model.file.sha256,
               "quantization": runtime.model.info.file_type},
        git_commit=_git_commit(),
        settings={"n_ctx": config.n_ctx, "n_batch": config.n_batch,
                  "per_domain": args.per_domain},
        rows=rows,
    )  # fmt: skip
    runtime.close()
    _print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\nwritten: {out}")
    return report


def _print(report: dict[str, Any]) -> None:
    print(
        f"\n{report['n_questions']} eval questions, {report['machine']['cpu_threads_used']} "
        f"threads, model {report['model']['quantization']} {report['model']['sha256'][:12]}"
    )
    print(f"{'mode':16} {'median ms':>10} {'p95 ms':>10}")
    for name, value in report["latency_ms"].items():
        print(f"{name:16} {value['median']:10.1f} {value['p95']:10.1f}")
    print("\nratios (of medians):")
    for name, value in report["ratios_of_medians"].items():
        print(f"  {name:24} {value:6.2f}")
    print(f"per-question medians: {report['per_question_ratio_median']}")
    print(f"agreement: {json.dumps(report['agreement'], ensure_ascii=False)}")
    print(f"free-format compliance: {report['free_compliance']}")
    print(f"accuracy (edge, base model): {report['accuracy']}")
    print(
        f"prompt eval {report['prompt_tokens_per_s']} tokens/s, decode "
        f"{report['decode_ms_per_token']} ms/token, load {report['load_ms']} ms"
    )
    print(
        f"peak RSS (this process, all modes) {report['peak_rss_mb']} MB; fresh process "
        f"(cold start, fast only): {report['subprocess']}"
    )


if __name__ == "__main__":
    main()
