"""The ``foggen bench`` and ``foggen tau recommend`` subcommands (argparse)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench.config import SIGNALS
from benchmarks.data import DOMAINS, SPLITS


def add_bench_commands(commands: Any) -> None:
    from edge_runtime.cli import _add_cloud_arguments

    bench = commands.add_parser(
        "bench",
        help="accuracy, routing and speed on the bundled data (the card's table, plots)",
        description="Every question once through fast mode; the card-style table at tau, "
        "calibration, tau sweep, speed against grammar/free/transformers. Writes bench.md, "
        "bench.json and PNG plots to --out.",
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="all 200 eval questions per domain")
    size.add_argument("--limit", type=int, default=None, help="questions per domain (default 50)")
    bench.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated domains")
    bench.add_argument(
        "--split",
        choices=SPLITS,
        default="eval",
        help="bundled split (eval; calib to choose taus without touching eval)",
    )
    bench.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="GGUF",
        help="GGUF path, hf://..., or 'embedded'; repeat to compare (default: the usual selection)",
    )
    bench.add_argument("--out", type=Path, default=Path("reports/bench"), help="output folder")
    bench.add_argument("--tau", type=float, default=0.5, help="tau of the card table (default 0.5)")
    bench.add_argument(
        "--signal",
        default="bucket",
        choices=SIGNALS,
        help="the card table's routing signal (default bucket, the card's)",
    )
    bench.add_argument(
        "--small",
        type=int,
        default=3,
        help="questions per domain for grammar/free/transformers (default 3)",
    )
    bench.add_argument(
        "--hf-checkpoint",
        type=Path,
        default=None,
        help="HF checkpoint for the transformers bf16 baseline (needs [train])",
    )
    bench.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    bench.add_argument("--no-cold-start", action="store_true", help="skip the fresh-process runs")
    bench.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    bench.add_argument("--json", action="store_true", help="print the report JSON on stdout")
    _add_cloud_arguments(bench)
    bench.set_defaults(handler=_cmd_bench)

    tau = commands.add_parser("tau", help="choose routing thresholds from a bench run")
    actions = tau.add_subparsers(dest="tau_command", required=True)
    rec = actions.add_parser(
        "recommend",
        help="tau globally and per domain for a target cloud fraction or accuracy",
        description="Reads bench.json, writes a tau file the runtime loads with --tau-file.",
    )
    target = rec.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-cloud-fraction", type=float, help="e.g. 0.3")
    target.add_argument("--target-accuracy", type=float, help="system accuracy, e.g. 0.6")
    rec.add_argument("--bench", type=Path, default=Path("reports/bench/bench.json"))
    rec.add_argument(
        "--bench-model", default=None, help="label or sha256 when the bench has several"
    )
    rec.add_argument("--signal", choices=["bucket", "letter", "calibrated"], default="bucket")
    rec.add_argument(
        "--out",
        type=Path,
        default=None,
        help="tau file to write (default: $FOGGEN_HOME/taus/<sha256>-<signal>.json)",
    )
    rec.set_defaults(handler=_cmd_tau_recommend)


def _usage_errors(
    handler: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Bad settings and unusable bench files: one line on stderr, exit 2 (no traceback)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from benchmarks.bench.config import BenchConfigError
        from benchmarks.bench.tau import BenchFileError

        try:
            return handler(args)
        except (BenchConfigError, BenchFileError) as exc:
            print(f"foggen: error: {exc}", file=sys.stderr)
            return 2

    return run


@_usage_errors
def _cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.bench.config import DEFAULT_PER_DOMAIN, BenchConfig
    from benchmarks.bench.run import run_bench, write_report
    from edge_runtime.cli import _cloud_config

    config = BenchConfig(
        models=tuple(args.model) if args.model else (None,),
        domains=tuple(d.strip() for d in args.domains.split(",") if d.strip()),
        per_domain=None if args.full else (args.limit or DEFAULT_PER_DOMAIN),
        small_per_domain=args.small,
        split=args.split,
        tau=args.tau,
        signal=args.signal,
        out=args.out,
        cloud=_cloud_config(args),
        hf_checkpoint=args.hf_checkpoint,
        threads=args.threads or max(1, os.cpu_count() or 1),
        cold_start=not args.no_cold_start,
        plots=not args.no_plots,
        progress=sys.stderr.isatty() or bool(os.environ.get("FOGGEN_PROGRESS")),
    )
    report = run_bench(config)
    written = write_report(report, config.out, plots=config.plots)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(written[1].read_text(encoding="utf-8"))
        print("written: " + ", ".join(str(p) for p in written))
    return 0


@_usage_errors
def _cmd_tau_recommend(args: argparse.Namespace) -> int:
    from benchmarks.bench.tau import BenchFileError, load_bench, recommend
    from edge_runtime.config import Signal, foggen_home

    target = (
        {"cloud_fraction": args.target_cloud_fraction}
        if args.target_cloud_fraction is not None
        else {"accuracy": args.target_accuracy}
    )
    for name, value in target.items():
        if not 0.0 <= value <= 1.0:
            raise BenchFileError(
                f"--target-{name.replace('_', '-')} must be in [0, 1], got {value}"
            )
    bench = load_bench(args.bench)
    table = recommend(
        bench,
        signal=Signal(args.signal),
        target=target,
        model_label=args.bench_model,
        source=str(args.bench),
    )
    out = args.out or foggen_home() / "taus" / f"{table['model_sha256']}-{args.signal}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1), encoding="utf-8")
    g = table["global"]
    print(
        f"global: tau {g['tau']} -> cloud fraction {g['cloud_fraction']:.3f}, "
        f"system accuracy {100 * g['accuracy']:.1f}% ({g['note']})"
    )
    for domain, d in table["domains"].items():
        print(
            f"  {domain:8} tau {d['tau']:<8} cloud {d['cloud_fraction']:.3f} "
            f"accuracy {100 * d['accuracy']:.1f}%  {d['note']}"
        )
    print(f"written: {out}  (use: foggen ask --tau-file {out} --signal {args.signal})")
    return 0
