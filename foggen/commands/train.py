"""``foggen train``: LoRA SFT on FogGen-schema examples (needs the [train] extra)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from converter.train_config import TrainConfig
from foggen.exits import EXIT_OK
from foggen.flags import add_flags, config_from


def register(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="LoRA SFT on FogGen-schema examples (needs the [train] extra)",
        description="Train a PEFT LoRA adapter on JSONL examples "
        '{"question", "choices", "confidence", "answer"} with the runtime\'s exact prompt.',
    )  # fmt: skip
    train.add_argument("checkpoint", help="HF checkpoint folder (foggen convert --to-hf ...)")
    train.add_argument("examples", help="JSONL examples")
    train.add_argument("--out", required=True, help="adapter folder to write")
    add_flags(train, TrainConfig)
    train.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from converter.train import train

    report = train(args.checkpoint, args.examples, args.out, config_from(TrainConfig, args))
    print(json.dumps(report.to_dict()))
    return EXIT_OK
