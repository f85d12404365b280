"""``python -m benchmarks.fog``: collect (resumable), then write the report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.fog.collect import Tiers, collect
from edge_runtime.mcq import stratified

DEFAULT_OUT = Path("reports/fog")
PER_DOMAIN = 50  # the 1.5B's fixed eval subset (the first 50 of each domain: 350 questions)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fog",
        description="Kiosk 270M -> gateway 1.5B (foggen serve) -> SIMULATED cloud on 127.0.0.1: "
        "collect each tier's outcome per question (resumable), then write the report.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    parser.add_argument("--limit", type=int, default=PER_DOMAIN, help="questions per domain")
    parser.add_argument("--report-only", action="store_true", help="no tiers: report what is there")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tiers = Tiers()
    questions = stratified(args.limit, split="eval")
    outcomes = args.out / "outcomes.jsonl"
    run = None
    if args.report_only and (args.out / "fog.json").is_file():  # the collection it came from
        run = json.loads((args.out / "fog.json").read_text()).get("run")
    if not args.report_only:
        started = time.perf_counter()
        run = collect(questions, tiers, outcomes)
        run["wall_seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(run))
    from benchmarks.fog.report import write_report

    write_report(args.out, questions, tiers, run)


if __name__ == "__main__":
    main()
