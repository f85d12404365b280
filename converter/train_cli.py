"""``foggen train``, ``foggen chain`` and ``foggen model build`` (parsers and handlers).

Heavy imports (torch, the converter's steps) happen inside the handlers only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

EXIT_OK = 0
_BOOL_FALSE = ("0", "false", "no")


def _add_dataclass_flags(
    parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: tuple[str, ...] = ()
) -> None:
    """One flag per field of a frozen config (its help and default), so they never drift."""
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default
        kind = type(default) if default is not None else str
        flag = "--" + (prefix + f.name).replace("_", "-")
        text = f.metadata.get("help", "")
        text = text if "default" in text else f"{text} (default {default})".strip()
        if kind is bool:
            parser.add_argument(flag, dest=prefix + f.name, default=None, metavar="BOOL",
                                type=lambda t: t.lower() not in _BOOL_FALSE, help=text)  # fmt: skip
        else:
            parser.add_argument(flag, dest=prefix + f.name, default=None, type=kind, help=text)


def _config_from(args: argparse.Namespace, cls: type, prefix: str = "") -> Any:
    values = {f.name: getattr(args, prefix + f.name) for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if v is not None})


def add_training_commands(commands: Any, model_commands: Any) -> None:
    from converter.train_config import ChainBenchConfig, TrainConfig
    from edge_runtime.cli import _converter_command as guard  # the converter's error mapping

    train = commands.add_parser(
        "train", help="LoRA SFT on FogGen-schema examples (needs the [train] extra)",
        description="Train a PEFT LoRA adapter on JSONL examples "
        '{"question", "choices", "confidence", "answer"} with the runtime\'s exact prompt.',
    )  # fmt: skip
    train.add_argument("checkpoint", help="HF checkpoint folder (foggen convert --to-hf ...)")
    train.add_argument("examples", help="JSONL examples")
    train.add_argument("--out", required=True, help="adapter folder to write")
    _add_dataclass_flags(train, TrainConfig)
    train.set_defaults(handler=guard(_cmd_train))

    chain = commands.add_parser(
        "chain", help="the self-evolving chain: sample, label, SFT, merge, bench (resumable)"
    )
    chain.add_argument("--work", required=True, help="work folder (re-run to continue)")
    chain.add_argument("--publish", help="copy each round's adapter here (e.g. models/chain)")
    chain.add_argument("--report", help="write STEM.json / .md / .png (e.g. reports/chain-270m)")
    chain.add_argument("--title", default="FogGen chain", help="report title")
    from converter.train_config import ChainConfig

    _add_dataclass_flags(chain, ChainConfig, skip=("train", "bench"))
    _add_dataclass_flags(chain, TrainConfig, prefix="train_")
    _add_dataclass_flags(chain, ChainBenchConfig, prefix="bench_")
    chain.set_defaults(handler=guard(_cmd_chain))

    build = model_commands.add_parser(
        "build", help="rebuild a chain round's GGUF from the committed adapters (no torch)"
    )
    build.add_argument("--round", type=int, help="round number (default: the last published)")
    build.add_argument("--chain", default="models/chain", help="published adapters folder")
    build.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    build.set_defaults(handler=guard(_cmd_build))


def _cmd_train(args: argparse.Namespace) -> int:
    from converter.train import TrainConfig, train

    report = train(args.checkpoint, args.examples, args.out, _config_from(args, TrainConfig))
    print(json.dumps(report.to_dict()))
    return EXIT_OK


def _cmd_chain(args: argparse.Namespace) -> int:
    from converter.chain import Chain, ChainConfig
    from converter.chain_report import write_report
    from converter.train_config import ChainBenchConfig, TrainConfig

    logging.getLogger("converter").setLevel(logging.INFO)
    top = {
        f.name: getattr(args, f.name)
        for f in fields(ChainConfig)
        if f.name not in ("train", "bench")
    }
    config = ChainConfig(
        **{k: v for k, v in top.items() if v is not None},
        train=_config_from(args, TrainConfig, "train_"),
        bench=_config_from(args, ChainBenchConfig, "bench_"),
    )
    chain = Chain(Path(args.work), config, publish=Path(args.publish) if args.publish else None)
    manifests = chain.run()
    stem = Path(args.report) if args.report else Path(args.work) / "report"
    for path in write_report(manifests, stem, title=args.title, config=chain.config.to_dict()):
        print(path)
    return EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    from converter.chain_build import build_round
    from edge_runtime.config import foggen_home

    result = build_round(Path(args.chain), args.round, home=foggen_home(), threads=args.threads)
    print(json.dumps(result, indent=1))
    return EXIT_OK
