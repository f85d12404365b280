"""`make limits` on the embedded model: every run is there for every question, the summary's
ratios come from those rows, and the walks agree on what cannot move."""

from __future__ import annotations

import statistics

from benchmarks.limits import RUNS, measure
from edge_runtime.runtime import EdgeRuntime


def test_limits_report_the_runs_and_their_ratios(runtime: EdgeRuntime) -> None:
    report = measure(runtime, 1, progress=False, domains=("math", "science", "coding"))
    rows, summary = report["rows"], report["summary"]
    assert report["n_questions"] == len(rows) == 3 and report["guess"] == runtime.guess
    for row in rows:
        assert all(row[f"{name}_ms"] > 0 for name in RUNS)
        assert row["question_tokens"] > 0
    medians = {k: statistics.median(r[f"{k}_ms"] for r in rows) for k in RUNS}
    ratio = summary["all"]["ratios"]["fast / schema_limit"]
    assert abs(ratio - medians["fast"] / medians["schema_limit"]) < 1e-3
    # the capture changes no number, so the letters with and without it are the same
    assert summary["letters_differing"]["fast_hidden"] == 0
    assert 0.0 <= summary["guess_hit_rate"] <= 1.0
    assert runtime.engine.captures_hidden  # the siblings were closed, the runtime still works
    assert runtime.answer("1 + 1 = ?", ["2", "3"]).local_answer in ("A", "B")
