"""Expensive test artefacts (converted checkpoints, exported GGUFs) built once per machine.

An artefact is a folder in ``$FOGGEN_TEST_ARTEFACTS`` (default ``~/.cache/foggen-test-artefacts``)
named by a key over everything that could change it: its inputs, the source of every package
that produces it (so a change to the converter under test builds it anew: a cache never hides
one) and the versions of the libraries involved. Workers of one run share it through a file
lock: one builds, the others wait and read. Built in a hidden folder and renamed into place,
so a killed build leaves nothing a later run would trust. Entries of an older key are removed
after a week unused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
# read once at import, before the autouse fixture gives each test a HOME of its own
CACHE = Path(
    os.environ.get("FOGGEN_TEST_ARTEFACTS") or Path.home() / ".cache" / "foggen-test-artefacts"
)
LIBRARIES = (
    "gguf", "numpy", "torch", "transformers", "safetensors", "sentencepiece", "protobuf",
    "peft", "llama_cpp_python", "tokenizers",
)  # fmt: skip
STALE_SECONDS = 7 * 24 * 3600


@cache
def source_digest(package: str) -> str:
    """sha256 over the package's Python files (their paths and bytes)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / package).rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@cache
def library_versions() -> dict[str, str | None]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {name: version(name) for name in LIBRARIES}


def artefact_key(inputs: Mapping[str, object], packages: tuple[str, ...]) -> str:
    recipe = {
        "inputs": inputs,
        "sources": {p: source_digest(p) for p in packages},
        "libraries": library_versions(),
        "python": sys.version,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def artefact(
    name: str,
    build: Callable[[Path], None],
    *,
    inputs: Mapping[str, object],
    packages: tuple[str, ...] = ("converter", "edge_runtime"),
) -> Path:
    """The folder holding artefact ``name`` for these inputs, built by ``build(folder)`` if this
    machine has none yet."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"{name}-{artefact_key(inputs, packages)}"
    with FileLock(str(target) + ".lock"):
        if not target.is_dir():
            staging = Path(tempfile.mkdtemp(dir=CACHE, prefix=f".building-{name}-"))
            try:
                build(staging)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        os.utime(target)
    _prune(name, keep=target)
    return target


def _prune(name: str, *, keep: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for old in CACHE.glob(f"{name}-*"):
        if old != keep and old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
            Path(str(old) + ".lock").unlink(missing_ok=True)
