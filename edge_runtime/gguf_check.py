"""Look at a GGUF before llama.cpp does: magic, version, architecture, metadata, tensor table.

llama.cpp may abort the process on a corrupt file; here a missing, truncated, foreign or
garbled file becomes a typed error with a clear message instead. The header is walked with
``struct`` over a memory map (the tokenizer alone is 262,144 strings: ``gguf.GGUFReader``
takes ~10 s on it, this ~0.2 s); the GGML type sizes come from the ``gguf`` package.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import ModelFormatError, ModelNotFoundError, UnsupportedArchitectureError

# The chat-model architectures this runtime is tested on (each family has its tests).
SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("gemma3", "qwen2", "llama")
# Files llama.cpp loads but that cannot answer as a chat model: name what they are.
VISION_PROJECTOR_ARCHITECTURES = ("clip", "mmproj")
EMBEDDING_ARCHITECTURES = ("bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "t5encoder")
GGUF_MAGIC = b"GGUF"
SUPPORTED_GGUF_VERSIONS = (2, 3)
MAX_COUNT = 1 << 24  # more keys, tensors or array items than this means a garbled header
SMALL_ARRAY = 64  # arrays up to this length are kept as values; longer ones only counted

# GGUF value types -> struct format (8: string, 9: array are handled separately)
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}


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
    metadata: dict[str, object]  # scalar keys and short arrays (long arrays: their length)


class _Cursor:
    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> object:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def count(self) -> int:
        value = int(self.take("Q"))  # type: ignore[call-overload]
        if value > MAX_COUNT:
            raise ValueError(f"implausible count {value}")
        return value

    def string(self) -> str:
        length = int(self.take("Q"))  # type: ignore[call-overload]
        if self.pos + length > len(self.data):
            raise ValueError("a string runs past the end of the file")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8")

    def value(self, kind: int) -> object:
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == 8:
            return self.string()
        if kind == 9:
            item_kind, n = int(self.take("I")), self.count()  # type: ignore[call-overload]
            if item_kind in _SCALARS and n > SMALL_ARRAY:  # skip without decoding
                self.pos += n * struct.calcsize(_SCALARS[item_kind])
                return f"[{n} items]"
            items = [self.value(item_kind) for _ in range(n)]
            return items if n <= SMALL_ARRAY else f"[{n} items]"
        raise ValueError(f"unknown metadata value type {kind}")


def _walk(data: mmap.mmap) -> tuple[int, dict[str, object], list[tuple[str, int, int, int]]]:
    """(version, metadata, [(tensor name, ggml type, n_bytes, offset)]) with absolute offsets."""
    import gguf  # type sizes only

    cursor = _Cursor(data)
    cursor.pos = 4
    version = int(cursor.take("I"))  # type: ignore[call-overload]
    n_tensors, n_kv = cursor.count(), cursor.count()
    metadata: dict[str, object] = {}
    for _ in range(n_kv):
        key = cursor.string()
        metadata[key] = cursor.value(int(cursor.take("I")))  # type: ignore[call-overload]
    tensors = []
    for _ in range(n_tensors):
        name = cursor.string()
        dims = [int(cursor.take("Q")) for _ in range(int(cursor.take("I")))]  # type: ignore[call-overload]
        ggml_type, offset = int(cursor.take("I")), int(cursor.take("Q"))  # type: ignore[call-overload]
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
        n_elements = 1
        for dim in dims:
            n_elements *= dim
        tensors.append((name, ggml_type, n_elements // block * type_size, offset))
    alignment = metadata.get("general.alignment", 32)
    start = -(-cursor.pos // alignment) * alignment  # type: ignore[operator]
    return version, metadata, [(n, t, b, start + o) for n, t, b, o in tensors]


def inspect_gguf(path: str | Path) -> GGUFInfo:
    """Read and check a GGUF's header and tensor table; raise a typed error if unusable."""
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
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                version, metadata, tensors = _walk(data)
        except (ValueError, KeyError, struct.error, OverflowError, UnicodeDecodeError) as exc:
            raise ModelFormatError(str(path), f"its metadata cannot be read ({exc})") from exc
    end = max((offset + n_bytes for _, _, n_bytes, offset in tensors), default=0)
    if end > size:
        raise ModelFormatError(str(path), f"it is truncated ({size} bytes, tensors need {end})")
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str):
        raise ModelFormatError(str(path), "it has no general.architecture key")
    _check_chat_model(path, architecture, metadata)
    context = metadata.get(f"{architecture}.context_length")
    name = metadata.get("general.name")
    return GGUFInfo(
        path=path,
        size=size,
        version=version,
        architecture=architecture,
        name=name if isinstance(name, str) else None,
        file_type=_file_type_name(metadata.get("general.file_type")),
        context_length=context if isinstance(context, int) else None,
        n_tensors=len(tensors),
        tensor_types=dict(Counter(_type_name(t) for _, t, _, _ in tensors).most_common()),
        metadata=metadata,
    )


def _check_chat_model(path: Path, architecture: str, metadata: dict[str, object]) -> None:
    """Refuse, with the reason, a file that llama.cpp cannot run as a chat model here."""
    if architecture in VISION_PROJECTOR_ARCHITECTURES or metadata.get("general.type") == "mmproj":
        raise ModelFormatError(str(path), "it is a vision projector (mmproj), not a language model")
    pooling = metadata.get(f"{architecture}.pooling_type")
    if architecture in EMBEDDING_ARCHITECTURES or (isinstance(pooling, int) and pooling > 0):
        raise ModelFormatError(
            str(path), f"it is an embedding model ('{architecture}'), which cannot generate text"
        )
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(str(path), architecture, SUPPORTED_ARCHITECTURES)
    if "tokenizer.ggml.model" not in metadata:
        raise ModelFormatError(str(path), "it has no tokenizer (tokenizer.ggml.model)")


def _type_name(ggml_type: int) -> str:
    import gguf

    return gguf.GGMLQuantizationType(ggml_type).name


def _file_type_name(value: object) -> str | None:
    import gguf

    if not isinstance(value, int):
        return None
    try:
        return gguf.LlamaFileType(value).name
    except ValueError:
        return str(value)
