"""``foggen model list | info | fetch | build``: the named models, inspect, assemble, or rebuild
a chain round's GGUF."""

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
    listing = actions.add_parser(
        "list", help="the named models: installed (their extra), assembled, and where"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    info = actions.add_parser("info", help="path, sha256, architecture, quantization")
    fetch = actions.add_parser(
        "fetch", help="assemble (or download) the model into the cache ahead of time"
    )
    for sub in (info, fetch):
        sub.add_argument(
            "name", nargs="?", help="a model name, chain:N, hf:// ref or path (same as --model)"
        )
        add_flags(sub, RuntimeConfig, only=("model",))
        sub.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=run_info)
    fetch.set_defaults(handler=run_fetch)
    build = actions.add_parser(
        "build",
        help="rebuild a chain round's GGUF from the committed adapters (no torch for Gemma)",
    )
    build.add_argument("--round", type=int, help="round number (default: the last published)")
    build.add_argument("--chain", default="models/chain", help="published adapters folder")
    build.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    build.add_argument(
        "--base",
        help="the GGUF or named model the chain started from (default: the embedded model); "
        "a Qwen2 or Llama base needs the [train] extra",
    )
    build.set_defaults(handler=run_build)


def _reference(args: argparse.Namespace) -> str | None:
    return args.name or runtime_config(args).model


def run_list(args: argparse.Namespace) -> int:
    from edge_runtime.catalog import CATALOG, installed
    from edge_runtime.config import foggen_home
    from edge_runtime.models import assembled_path
    from edge_runtime.routing.calibrator import calibrator_path, shipped_path

    home = foggen_home()
    rows = []
    for model in CATALOG:
        path = assembled_path(model, home=home)
        rows.append(
            {
                "name": model.name,
                "aliases": list(model.aliases),
                "title": model.title,
                "extra": model.extra,
                "installed": installed(model),
                "assembled": path is not None,
                "path": str(path) if path else None,
                "sha256": model.sha256,
                "size_bytes": model.size,
                "licence": model.licence,
                "calibrator": "own fit"
                if calibrator_path(home, model.sha256).is_file()
                else "shipped"
                if shipped_path(model.sha256).is_file()
                else None,
            }
        )
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    for row in rows:
        state = "assembled" if row["assembled"] else "installed" if row["installed"] else "-"
        extra = f"[{row['extra']}]" if row["extra"] else "(built in)"
        calibrator = f"calibrator: {row['calibrator']}" if row["calibrator"] else ""
        print(f"{row['name']:20} {state:10} {extra:13} {row['title']}  {calibrator}".rstrip())
        if row["path"]:
            print(f"{'':20} {row['path']}")
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    from edge_runtime.config import foggen_home
    from edge_runtime.gguf_check import inspect_gguf
    from edge_runtime.models import resolve_model

    file = resolve_model(_reference(args), home=foggen_home())
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
    import sys

    from edge_runtime.catalog import named_model
    from edge_runtime.config import foggen_home
    from edge_runtime.gguf_check import inspect_gguf
    from edge_runtime.models import fetch_named, resolve_model

    reference, home = _reference(args), foggen_home()
    named = named_model(reference or "embedded")
    if named is not None:  # assemble with a progress bar first (resolve_model then finds it)
        fetch_named(named, home=home, progress=sys.stderr.isatty())
    file = resolve_model(reference, home=home)
    inspect_gguf(file.path)
    data = {"path": str(file.path), "sha256": file.sha256, "source": file.source.value}
    print(json.dumps(data) if args.json else f"{file.path}  sha256 {file.sha256}")
    return EXIT_OK


def run_build(args: argparse.Namespace) -> int:
    from converter.chain.build import build_round
    from edge_runtime.config import foggen_home
    from edge_runtime.models import resolve_model

    home = foggen_home()
    base = resolve_model(args.base, home=home).path if args.base else None
    result = build_round(
        Path(args.chain), args.round, home=home, threads=args.threads, base_gguf=base
    )
    print(json.dumps(result, indent=1))
    return EXIT_OK
