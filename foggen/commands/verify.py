"""``foggen verify``: prove a GGUF matches its HF source (needs the [train] extra)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from foggen.exits import EXIT_OK


def register(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="prove a GGUF matches its HF source (needs the [train] extra)"
    )
    verify.add_argument("source", help="HF checkpoint folder or hub id")
    verify.add_argument("gguf", help="the GGUF converted from it")
    verify.add_argument("--adapter", help="PEFT adapter applied on the HF side")
    verify.add_argument(
        "--prompts", type=int, default=50, help="bundled eval questions (default 50)"
    )
    verify.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads")
    verify.add_argument("--out", help="also write the JSON report here")
    verify.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from converter.verify import verify
    from edge_runtime.mcq import DOMAINS, stratified

    per_domain = -(-args.prompts // len(DOMAINS))
    questions = stratified(per_domain)[: args.prompts]
    report = verify(args.source, args.gguf, questions, adapter=args.adapter, threads=args.threads)
    text = json.dumps(report.to_dict(), indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return EXIT_OK
