"""python -m benchmarks.ladder --model NAME [--limit N | --full] [--calib N] [--rungs ...]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.bench.config import BenchConfig
from benchmarks.bench.run import run_bench, write_report
from benchmarks.ladder import __doc__ as LADDER_DOC
from benchmarks.ladder.analysis import rung_row, with_f16_calibrator
from benchmarks.ladder.markdown import render
from benchmarks.ladder.repack import repack_info
from benchmarks.ladder.rungs import RUNGS, build_rungs
from benchmarks.ladder.transfer import calibrator_transfer
from benchmarks.report import write_json
from edge_runtime.mcq import DOMAINS

NOTE = (
    "Every rung comes from a dequantized quantized file (the original bf16 weights are not "
    "reachable here): F16 is our export of that dequantized checkpoint, the others are "
    "quantized from it. Differences between rungs measure re-quantization noise relative to "
    "that F16, not distance from the original model."
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(LADDER_DOC or "").strip().splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="a named model")
    parser.add_argument("--rungs", default=",".join(RUNGS), help="comma-separated; F16 first")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--limit", type=int, default=50, help="eval questions per domain")
    size.add_argument("--full", action="store_true", help="every eval question")
    parser.add_argument("--calib", type=int, default=32, help="calib questions per domain")
    parser.add_argument("--small", type=int, default=1, help="per domain, for the speed part")
    parser.add_argument(
        "--domains", default=",".join(DOMAINS), help="comma-separated domains (default: all)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=".cache/ladder", help="where the rungs' GGUFs go")
    parser.add_argument("--out", help="default: reports/ladder/MODEL")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild ladder.json/.md from OUT/bench/bench.json and the cached passes",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    names = tuple(n.strip().upper() for n in args.rungs.split(",") if n.strip())
    if not names or names[0] != "F16":
        raise SystemExit("--rungs must start with F16 (every rung is compared with it)")
    out = Path(args.out or f"reports/ladder/{args.model}")
    rungs = build_rungs(args.model, names, Path(args.work) / args.model)
    config = BenchConfig(
        models=tuple(str(r.path) for r in rungs),
        per_domain=None if args.full else args.limit,
        calib_per_domain=args.calib,
        domains=tuple(d.strip() for d in args.domains.split(",") if d.strip()),
        small_per_domain=args.small,
        threads=args.threads,
        out=out / "bench",
        plots=False,
    )
    if args.report_only:
        report = json.loads((out / "bench" / "bench.json").read_text(encoding="utf-8"))
    else:
        report = run_bench(config)
        write_report(report, out / "bench", plots=False)
    models = report["models"]
    transfer = calibrator_transfer(config, rungs, report)
    ladder: dict[str, Any] = {
        "format": "foggen-ladder",
        "model": args.model,
        "note": NOTE,
        "settings": report["settings"],
        "machine": report["machine"],
        "machine_line": _machine_line(report["machine"]),
        "git_commit": report["git_commit"],
        "rungs": {},
        "transfer": transfer,
    }
    for rung, model in zip(rungs, models, strict=True):
        row = rung_row(model, models[0])
        row.update(build=rung.build, stored_as=rung.stored_as(), sha256=model["sha256"])
        row["repack"] = repack_info(rung.path)
        ladder["rungs"][rung.name] = row
        with_f16_calibrator(row, transfer[rung.name], transfer[rungs[0].name])
    write_json(out / "ladder.json", ladder)
    (out / "ladder.md").write_text(render(ladder), encoding="utf-8")
    print(json.dumps({"written": [str(out / "ladder.json"), str(out / "ladder.md")]}))
    return ladder


def _machine_line(machine: dict[str, Any]) -> str:
    where = machine.get("processor") or machine.get("platform") or "CPU"
    return f"{machine.get('cpu_count')} cores ({where}), {machine.get('threads_used')} threads"


if __name__ == "__main__":
    main()
