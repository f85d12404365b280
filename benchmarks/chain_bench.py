"""Bench one chain checkpoint with ``foggen bench`` (``benchmarks.bench``) on the eval split:
the chain's bench step (``converter.chain.context.BenchStep``), given to it by ``foggen chain``.

The whole bench report (JSON, Markdown, plots) is written next to the round; the manifest keeps
the summary the chain report tabulates: free-format compliance (strict / lenient, small subset),
raw accuracy, AUROC / ECE per routing signal and the card's Mean row at tau (simulated cloud:
routed fraction, system accuracy, random routing, lift in points).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.bench.config import BenchConfig
from benchmarks.bench.run import run_bench, write_report
from converter.train_config import ChainBenchConfig

SIGNALS = ("bucket", "bucket_expectation", "letter")


def bench_gguf(
    gguf: Path, config: ChainBenchConfig, *, home: Path, out: Path, progress: bool = True
) -> dict[str, Any]:
    """Run the bench on ``gguf``, write its report to ``out``; the summary for the manifest."""

    bench = BenchConfig(
        models=(str(gguf),), per_domain=config.per_domain, tau=config.tau, out=out,
        small_per_domain=config.small_per_domain, threads=config.threads, cold_start=False,
        progress=progress,
    )  # fmt: skip
    report = run_bench(bench, home=home)
    write_report(report, out)
    return summarise(report, out)


def summarise(report: dict[str, Any], out: Path) -> dict[str, Any]:
    """The chain's row of one bench report (fractions in [0, 1], lift in points)."""
    model = report["models"][0]
    mean = model["card"]["mean"]
    calibration = model["calibration"]
    compliance = model["format_compliance"]
    questions = model["questions"]
    return {
        "gguf_sha256": model["sha256"],
        "report": str(out / "bench.json"),
        "n_questions": mean["n"],
        "raw_accuracy": round(mean["edge_raw"] / 100.0, 4),
        "auroc": calibration["bucket"]["auroc"],
        "ece": calibration["bucket"]["ece"],
        "signals": {s: {k: calibration[s][k] for k in ("auroc", "ece")} for s in SIGNALS},
        "at_tau": {
            "tau": report["settings"]["tau"],
            "cloud_fraction": mean["routed_fraction"],
            "system_accuracy": round(mean["foggen_at_tau"] / 100.0, 4),
            "random": round(mean["random_at_tau"] / 100.0, 4),
            "lift_points": mean["lift"],
        },
        "bucket_counts": calibration["bucket_histogram"],
        "letter_counts": dict(sorted(Counter(str(q["local"]) for q in questions).items())),
        "free_n": compliance["n"],
        "free_strict": compliance["strict"],
        "free_lenient": compliance["lenient"],
        "fast_median_ms": model["speed"]["fast"]["latency_ms"]["median"],
    }
