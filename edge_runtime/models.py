"""Which GGUF to run, and where it lives on disk.

A model reference is, in this order: nothing (the embedded Gemma-3-270M); a named model of
:mod:`edge_runtime.catalog` (``qwen2.5-coder-1.5b``, ``smollm2-135m``, ...), assembled once
from its installed packages into FogGen's cache; ``chain:N`` (a round of the FogGen chain on
the embedded model) or ``chain:<name>:N`` (on another named base model); an
``hf://owner/repo/path/file.gguf[@revision]`` (downloaded with huggingface-hub into its cache);
or a local path (write ``./name`` for a file that shares a model's name). A reference that is
neither, has no directory part and no ``.gguf`` suffix is taken for a misspelt name: the error
lists the names instead of saying a file is missing.

The sha256 of every file is stamped next to the cache, keyed by (path, size, mtime), so later
starts skip re-hashing 250 MB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edge_runtime.atomic import write_text_atomic
from edge_runtime.catalog import EMBEDDED_NAME, NamedModel, assemble, named_model, require_named
from edge_runtime.errors import ModelNotFoundError, ModelUnavailableError

log = logging.getLogger(__name__)

HF_SCHEME = "hf://"
CHAIN_SCHEME = "chain:"  # chain:N - the GGUF built by `foggen model build --round N`
EMBEDDED_FILENAME = require_named(EMBEDDED_NAME).filename
EMBEDDED_REFERENCE = "embedded"
STAMPS_FILENAME = "sha256-stamps.json"


class ModelSource(str, Enum):
    EMBEDDED = "embedded"
    NAMED = "named"
    PATH = "path"
    HUB = "hf"
    CHAIN = "chain"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    sha256: str
    source: ModelSource
    reference: str


@dataclass(frozen=True)
class HubReference:
    repo_id: str
    filename: str
    revision: str | None

    @classmethod
    def parse(cls, reference: str) -> HubReference:
        body = reference[len(HF_SCHEME) :]
        body, _, revision = body.partition("@")
        parts = body.split("/")
        if len(parts) < 3 or not all(parts) or not parts[-1].endswith(".gguf"):
            raise ValueError(
                f"bad hub reference {reference!r} - expected hf://owner/repo/file.gguf[@revision]"
            )
        return cls("/".join(parts[:2]), "/".join(parts[2:]), revision or None)


def resolve_model(reference: str | None, *, home: Path) -> ModelFile:
    """Turn a reference into a file on disk with its sha256 (downloading or assembling)."""
    named = named_model(reference or EMBEDDED_NAME)
    if named is not None:
        path = fetch_named(named, home=home)
        if named.name == EMBEDDED_NAME:
            return ModelFile(path, named.sha256, ModelSource.EMBEDDED, EMBEDDED_REFERENCE)
        return ModelFile(path, named.sha256, ModelSource.NAMED, named.name)
    assert reference  # the empty reference is the embedded model
    if reference.startswith(CHAIN_SCHEME):
        path = chain_model_path(reference, home=home)
        if not path.is_file():
            raise ModelNotFoundError(f"{path} (build it first: foggen model build --round N)")
        return ModelFile(path, file_sha256(path, home=home), ModelSource.CHAIN, reference)
    if reference.startswith(HF_SCHEME):
        path = download_from_hub(HubReference.parse(reference))
        return ModelFile(path, file_sha256(path, home=home), ModelSource.HUB, reference)
    path = Path(reference).expanduser()
    if not path.is_file():
        if looks_like_a_name(reference):
            require_named(reference)  # raises UnknownModelError, listing the names
        raise ModelNotFoundError(str(path))
    return ModelFile(path.resolve(), file_sha256(path, home=home), ModelSource.PATH, reference)


def looks_like_a_name(reference: str) -> bool:
    """A reference with no directory part and no ``.gguf`` suffix: meant as a model name."""
    separators = ("/", os.sep, os.altsep or "/")
    return not any(s in reference for s in separators) and not reference.lower().endswith(".gguf")


def chain_model_path(reference: str, *, home: Path) -> Path:
    """Where ``foggen model build`` puts the GGUF of ``chain:N`` (the embedded model's chain)
    or ``chain:<named model>:N`` (a chain on another named base model)."""
    body = reference[len(CHAIN_SCHEME) :]
    base, _, number = body.rpartition(":")
    if not number.isdigit() or (base and named_model(base) is None):
        raise ValueError(
            f"bad chain reference {reference!r} - expected chain:N or chain:<model name>:N, "
            "N a round number"
        )
    model = require_named(base or EMBEDDED_NAME)
    if model.name == EMBEDDED_NAME:
        return home / "models" / f"chain-{int(number):02d}-q4_k_m.gguf"
    return home / "models" / f"chain-{model.name}-{int(number):02d}-q4_k_m.gguf"


def download_from_hub(ref: HubReference) -> Path:
    """Download one file with huggingface-hub (its own cache).

    ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` are read now, not when huggingface-hub was first
    imported: offline, a file not in the cache fails at once instead of after the hub's five
    retries (about 23 s of backoff)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

    reference = f"{HF_SCHEME}{ref.repo_id}/{ref.filename}"
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ENV_VARS_TRUE_VALUES
    try:
        return Path(
            hf_hub_download(
                ref.repo_id,
                ref.filename,
                revision=ref.revision,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                local_files_only=offline,
            )
        )
    except Exception as exc:  # the hub raises many transport-specific types
        raise ModelUnavailableError(reference, f"{type(exc).__name__}: {exc}") from exc


def fetch_embedded(*, home: Path) -> Path:
    """The embedded model's file in ``home/models``, assembled once."""
    return fetch_named(require_named(EMBEDDED_NAME), home=home)


def assembled_path(model: NamedModel, *, home: Path) -> Path | None:
    """The named model's file in the cache if it is there and stamped with the pinned hash."""
    target = home / "models" / model.filename
    return target if target.is_file() and _stamp_for(target, home) == model.sha256 else None


def fetch_named(model: NamedModel, *, home: Path, progress: bool = False) -> Path:
    """Assemble a named model into ``home/models`` once, atomically (temp file + rename); a
    file whose stamp shows another hash (damaged, replaced) is assembled again."""
    target = home / "models" / model.filename
    if assembled_path(model, home=home):
        return target
    log.info("assembling %s into %s", model.name, target)
    from tqdm import tqdm

    with tqdm(
        total=model.size,
        unit="B",
        unit_scale=True,
        desc=f"assemble {model.name}",
        disable=not progress,
    ) as bar:
        assemble(model, target, progress=bar.update)
    _write_stamp(target, model.sha256, home)
    return target


def hash_file(path: Path) -> str:
    """The file's sha256 (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path, *, home: Path) -> str:
    """The file's sha256, from the stamp when size and mtime still match, else hashed."""
    stamped = _stamp_for(path, home)
    if stamped:
        return stamped
    sha256 = hash_file(path)
    _write_stamp(path, sha256, home)
    return sha256


def _stamps(home: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((home / STAMPS_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stamp_for(path: Path, home: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    entry = _stamps(home).get(str(path.resolve()))
    if (
        isinstance(entry, dict)
        and entry.get("size") == stat.st_size
        and entry.get("mtime_ns") == stat.st_mtime_ns
        and isinstance(entry.get("sha256"), str)
    ):
        return str(entry["sha256"])
    return None


def _write_stamp(path: Path, sha256: str, home: Path) -> None:
    stat = path.stat()
    stamps = _stamps(home)
    stamps[str(path.resolve())] = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": sha256,
    }
    home.mkdir(parents=True, exist_ok=True)
    write_text_atomic(home / STAMPS_FILENAME, json.dumps(stamps, indent=1))
