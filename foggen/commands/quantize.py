"""``foggen quantize``: a GGUF to a smaller quantization type with llama.cpp."""

from __future__ import annotations

import argparse
import json
from typing import Any

from foggen.exits import EXIT_OK


def register(commands: Any) -> None:
    quantize = commands.add_parser("quantize", help="quantize a GGUF with llama.cpp")
    quantize.add_argument("input", help="F32/F16/BF16 GGUF (e.g. a foggen convert export)")
    quantize.add_argument("output", help="quantized GGUF to write")
    quantize.add_argument(
        "--type", required=True, help="Q8_0 | Q6_K | Q5_K_M | Q4_K_M | Q4_0 | IQ4_NL | Q2_K"
    )
    quantize.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    quantize.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from converter.quantize import QuantType, quantize

    report = quantize(args.input, args.output, QuantType.parse(args.type), threads=args.threads)
    print(json.dumps(report.to_dict()))
    return EXIT_OK
