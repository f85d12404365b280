"""``foggen convert``: HF checkpoint (+ LoRA adapter) -> GGUF, or a GGUF back to HF."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from foggen.exits import EXIT_OK


def register(commands: Any) -> None:
    convert = commands.add_parser(
        "convert",
        help="HF checkpoint (+ LoRA adapter) -> GGUF, or GGUF -> HF with --from-gguf",
        description="Convert a Hugging Face checkpoint (folder or hub id) of Gemma-3, Qwen2 or "
        "Llama, with an optional PEFT LoRA adapter merged in, to GGUF; or a GGUF back to a bf16 "
        "HF checkpoint (Qwen2 and Llama through transformers: needs the [train] extra).",
    )
    convert.add_argument("source", nargs="?", help="checkpoint folder or hub id (owner/name)")
    convert.add_argument("--out", help="output .gguf")
    convert.add_argument("--dtype", default="f16", help="f32 | f16 | bf16 | q8_0 (default f16)")
    convert.add_argument("--adapter", help="PEFT LoRA adapter folder to merge")
    convert.add_argument("--from-gguf", metavar="GGUF", help="convert this GGUF back to HF")
    convert.add_argument("--to-hf", metavar="DIR", help="with --from-gguf: the new HF folder")
    convert.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.from_gguf:
        from converter.to_hf import gguf_to_hf

        if not args.to_hf or args.source:
            raise ValueError("use: foggen convert --from-gguf IN.gguf --to-hf DIR")
        print(gguf_to_hf(args.from_gguf, args.to_hf))
        return EXIT_OK
    from converter.gguf_export import OutType, export_gguf
    from edge_runtime.gguf_check import inspect_gguf

    if not args.source or not args.out:
        raise ValueError("use: foggen convert SRC --out OUT.gguf [--dtype ...] [--adapter DIR]")
    out_type = OutType.parse(args.dtype)
    path = export_gguf(args.source, Path(args.out), out_type=out_type, adapter=args.adapter)
    info = inspect_gguf(path)
    print(
        json.dumps({"path": str(path), "size_bytes": info.size, "tensor_types": info.tensor_types})
    )
    return EXIT_OK
