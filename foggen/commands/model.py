"""``foggen model info | fetch | build``: inspect, assemble, or rebuild a chain round's GGUF."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from edge_runtime.config import RuntimeConfig
from foggen.commands.common import runtime_config
from foggen.exits import EXIT_OK
from foggen.flags import add_flags


def register(commands: Any) -> None:
    model = commands.add_parser("model", help="inspect or prepare the GGUF model")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    info = actions.add_parser("info", help="path, sha256, architecture, quantization")
    fetch = actions.add_parser(
        "fetch", help="assemble (or download) the model into the cache ahead of time"
    )
    for sub in (info, fetch):
        add_flags(sub, RuntimeConfig, only=("model",))
        sub.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)
    fetch.set_defaults(handler=run_fetch)
    build = actions.add_parser(
        "build", help="rebuild a chain round's GGUF from the committed adapters (no torch)"
    )
    build.add_argument("--round", type=int, help="round number (default: the last published)")
    build.add_argument("--chain", default="models/chain", help="published adapters folder")
    build.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    build.set_defaults(handler=run_build)


def run_info(args: argparse.Namespace) -> int:
    from edge_runtime.config import foggen_home
    from edge_runtime.gguf_check import inspect_gguf
    from edge_runtime.models import resolve_model

    file = resolve_model(runtime_config(args).model, home=foggen_home())
    info = inspect_gguf(file.path)
    data = {
        "path": str(file.path),
        "source": file.source.value,
        "sha256": file.sha256,
        "architecture": info.architecture,
        "name": info.name,
        "quantization": info.file_type,
        "size_bytes": info.size,
        "gguf_version": info.version,
        "context_length": info.context_length,
        "n_tensors": info.n_tensors,
        "tensor_types": info.tensor_types,
    }
    if args.json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key:15} {value}")
    return EXIT_OK


def run_fetch(args: argparse.Namespace) -> int:
    from edge_runtime.config import foggen_home
    from edge_runtime.gguf_check import inspect_gguf
    from edge_runtime.models import resolve_model

    file = resolve_model(runtime_config(args).model, home=foggen_home())
    inspect_gguf(file.path)
    data = {"path": str(file.path), "sha256": file.sha256, "source": file.source.value}
    print(json.dumps(data) if args.json else f"{file.path}  sha256 {file.sha256}")
    return EXIT_OK


def run_build(args: argparse.Namespace) -> int:
    from converter.chain.build import build_round
    from edge_runtime.config import foggen_home

    result = build_round(Path(args.chain), args.round, home=foggen_home(), threads=args.threads)
    print(json.dumps(result, indent=1))
    return EXIT_OK
