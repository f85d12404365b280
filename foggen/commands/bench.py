"""``foggen bench``: accuracy, routing and speed on the bundled data (the card's table, plots)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from benchmarks.bench.config import BenchConfig
from foggen.commands.common import add_cloud_flags, cloud_config
from foggen.exits import EXIT_OK
from foggen.flags import add_flags, config_from


def register(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="accuracy, routing and speed on the bundled data (the card's table, plots)",
        description="Every question once through fast mode; the card-style table at tau, "
        "calibration, tau sweep, speed against grammar/free/transformers. Writes bench.md, "
        "bench.json and PNG plots to --out.",
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="every question of the split")
    add_flags(size, BenchConfig, only=("per_domain",))
    add_flags(bench, BenchConfig, skip=("per_domain",))
    bench.add_argument("--json", action="store_true", help="print the report JSON on stdout")
    add_cloud_flags(bench)
    bench.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.bench.run import run_bench, write_report

    given: dict[str, Any] = {"per_domain": None} if args.full else {}
    config: BenchConfig = config_from(
        BenchConfig,
        args,
        cloud=cloud_config(args),
        progress=sys.stderr.isatty() or bool(os.environ.get("FOGGEN_PROGRESS")),
        **given,
    )
    report = run_bench(config)
    written = write_report(report, config.out, plots=config.plots)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(written[1].read_text(encoding="utf-8"))
        print("written: " + ", ".join(str(p) for p in written))
    return EXIT_OK
