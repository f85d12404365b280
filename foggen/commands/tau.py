"""``foggen tau recommend``: routing thresholds (global and per domain) from a bench run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge_runtime.routing.rule import Signal
from foggen.exits import EXIT_OK


def register(commands: Any) -> None:
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
    rec.add_argument("--signal", choices=[s.value for s in Signal], default=Signal.BUCKET.value)
    rec.add_argument(
        "--out",
        type=Path,
        default=None,
        help="tau file to write (default: $FOGGEN_HOME/taus/<sha256>-<signal>.json)",
    )
    rec.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.bench.tau import load_bench, recommend
    from benchmarks.errors import BenchFileError
    from edge_runtime.config import foggen_home

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
    table = recommend(
        load_bench(args.bench),
        signal=Signal(args.signal),
        target=target,
        model_label=args.bench_model,
        source=str(args.bench),
    )
    out = args.out or foggen_home() / "taus" / f"{table['model_sha256']}-{args.signal}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1), encoding="utf-8")
    _print_table(table)
    print(f"written: {out}  (use: foggen ask --tau-file {out} --signal {args.signal})")
    return EXIT_OK


def _print_table(table: dict[str, Any]) -> None:
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
