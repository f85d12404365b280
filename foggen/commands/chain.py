"""``foggen chain``: the self-evolving chain (sample, label, SFT, merge, bench; resumable)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from converter.train_config import ChainBenchConfig, ChainConfig, TrainConfig
from foggen.exits import EXIT_OK
from foggen.flags import add_flags, config_from


def register(commands: Any) -> None:
    chain = commands.add_parser(
        "chain", help="the self-evolving chain: sample, label, SFT, merge, bench (resumable)"
    )
    chain.add_argument("--work", required=True, help="work folder (re-run to continue)")
    chain.add_argument("--publish", help="copy each round's adapter here (e.g. models/chain)")
    chain.add_argument("--report", help="write STEM.json / .md / .png (e.g. reports/chain-270m)")
    chain.add_argument("--title", default="FogGen chain", help="report title")
    add_flags(chain, ChainConfig)
    add_flags(chain, TrainConfig, prefix="train_")
    add_flags(chain, ChainBenchConfig, prefix="bench_")
    chain.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.chain_bench import bench_gguf
    from converter.chain.report import write_report
    from converter.chain.runner import Chain

    logging.getLogger("converter").setLevel(logging.INFO)
    config = config_from(
        ChainConfig,
        args,
        train=config_from(TrainConfig, args, prefix="train_"),
        bench=config_from(ChainBenchConfig, args, prefix="bench_"),
    )
    publish = Path(args.publish) if args.publish else None
    chain = Chain(Path(args.work), config, publish=publish, bench=bench_gguf)
    manifests = chain.run()
    stem = Path(args.report) if args.report else Path(args.work) / "report"
    for path in write_report(manifests, stem, title=args.title, config=chain.config.to_dict()):
        print(path)
    return EXIT_OK
