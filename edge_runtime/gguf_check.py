"""Look at a GGUF before llama.cpp does: magic, version, architecture, readable metadata.

llama.cpp may abort the process on a corrupt file; here a missing, truncated, foreign or
garbled file becomes a typed error with a clear message instead.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import ModelFormatError, ModelNotFoundError, UnsupportedArchitectureError

SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("gemma3",)
GGUF_MAGIC = b"GGUF"
SUPPORTED_GGUF_VERSIONS = (2, 3)


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    size: int
    version: int
    architecture: str
    name: str | None
    file_type: str | None  # e.g. MOSTLY_Q4_K_M
    context_length: int | None
    n_tensors: int
    tensor_types: dict[str, int]  # ggml type name -> tensor count


def _field_value(reader: object, key: str) -> object:
    field = reader.fields.get(key)  # type: ignore[attr-defined]
    if field is None:
        return None
    return field.contents()


def inspect_gguf(path: str | Path) -> GGUFInfo:
    """Read and check a GGUF's header, metadata and tensor table; raise a typed error if unusable."""
    import gguf  # local import: keeps `import edge_runtime` light

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(str(path))
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(8)
    if len(header) < 8 or header[:4] != GGUF_MAGIC:
        raise ModelFormatError(str(path), "it does not start with the GGUF magic bytes")
    (version,) = struct.unpack("<I", header[4:8])
    if version not in SUPPORTED_GGUF_VERSIONS:
        raise ModelFormatError(str(path), f"unsupported GGUF version {version}")
    try:
        reader = gguf.GGUFReader(path, "r")
        architecture = _field_value(reader, "general.architecture")
        tensors = list(reader.tensors)
        end = max((t.data_offset + int(t.n_bytes) for t in tensors), default=0)
    except (ValueError, IndexError, KeyError, struct.error, OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(str(path), f"its metadata cannot be read ({exc})") from exc
    if end > size:
        raise ModelFormatError(str(path), f"it is truncated ({size} bytes, tensors need {end})")
    if not isinstance(architecture, str):
        raise ModelFormatError(str(path), "it has no general.architecture key")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(str(path), architecture, SUPPORTED_ARCHITECTURES)
    file_type = _field_value(reader, "general.file_type")
    context = _field_value(reader, f"{architecture}.context_length")
    name = _field_value(reader, "general.name")
    return GGUFInfo(
        path=path,
        size=size,
        version=version,
        architecture=architecture,
        name=name if isinstance(name, str) else None,
        file_type=_file_type_name(file_type),
        context_length=int(context) if isinstance(context, int) else None,
        n_tensors=len(tensors),
        tensor_types=dict(Counter(t.tensor_type.name for t in tensors).most_common()),
    )


def _file_type_name(value: object) -> str | None:
    import gguf

    if not isinstance(value, int):
        return None
    try:
        return gguf.LlamaFileType(value).name
    except ValueError:
        return str(value)
