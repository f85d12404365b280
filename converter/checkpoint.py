"""A Hugging Face checkpoint on disk (or fetched from the hub), read tensor by tensor.

config.json, single or sharded ``*.safetensors`` (with ``model.safetensors.index.json``) and the
tokenizer files. Tensors are streamed: at most one is in memory at a time (as float32).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import CheckpointFormatError, CheckpointNotFoundError, HubUnavailableError
from converter.families import Family, TextConfig, family_for
from converter.safetensors_io import SafetensorsFile

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_FILES = [
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.*",
    "adapter_config.json",
]
INDEX_FILE = "model.safetensors.index.json"


@dataclass(frozen=True)
class Checkpoint:
    directory: Path
    raw_config: dict[str, Any]
    config: TextConfig  # the family's parsed config
    family: Family
    files: tuple[SafetensorsFile, ...]

    def tensor_names(self) -> dict[str, tuple[SafetensorsFile, str]]:
        """Text-model tensor name -> (file, name in the file); other towers left out."""
        names = {}
        for file in self.files:
            for stored in file.tensors:
                name = self.family.text_name(stored)
                if name is not None:
                    names[name] = (file, stored)
        return names

    def tensors(self) -> Iterator[tuple[str, np.ndarray]]:
        for name, (file, stored) in self.tensor_names().items():
            yield name, file.read(stored)


def resolve_source(source: str | Path) -> Path:
    """A local folder, or a hub repo id downloaded with huggingface-hub (fails fast offline)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointNotFoundError(f"{path} is a file; give the checkpoint's folder")
    if not HUB_ID.match(str(source)):
        raise CheckpointNotFoundError(
            f"{source} is neither a folder nor a hub id like 'owner/name' - check the path"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(source), allow_patterns=HUB_FILES))
    except Exception as exc:  # the hub raises many transport-specific types
        raise HubUnavailableError(
            f"could not download {source} from the hub ({type(exc).__name__}: {exc}) - "
            "check the network or download it yourself and pass the folder"
        ) from exc


def open_checkpoint(source: str | Path) -> Checkpoint:
    directory = resolve_source(source)
    raw = read_json(directory / "config.json")
    family = family_for(raw.get("architectures"))
    config = family.parse_config(raw)
    return Checkpoint(directory, raw, config, family, tuple(_safetensors_files(directory)))


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path} is missing - a checkpoint folder needs it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointFormatError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointFormatError(f"{path} must hold a JSON object")
    return data


def _safetensors_files(directory: Path) -> list[SafetensorsFile]:
    index = directory / INDEX_FILE
    if index.is_file():
        weight_map = read_json(index).get("weight_map") or {}
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise CheckpointNotFoundError(
                f"{directory}: shards listed in {INDEX_FILE} are missing: {', '.join(missing)}"
            )
        return [SafetensorsFile(directory / n) for n in names]
    paths = sorted(p for p in directory.glob("*.safetensors") if not p.name.startswith("adapter"))
    if not paths:
        raise CheckpointNotFoundError(f"{directory} has no *.safetensors weights")
    return [SafetensorsFile(p) for p in paths]
