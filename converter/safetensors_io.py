"""Read and write safetensors without torch, tensor by tensor.

numpy has no bfloat16: BF16 tensors are read as raw 16-bit words and widened to float32
(the bits of a bf16 are the top half of the float32 it stands for), and written back by
rounding float32 to the nearest even bf16.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.errors import CheckpointFormatError, OutputError
from edge_runtime.atomic import atomic_write

_NUMPY_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
FLOAT_DTYPES = ("F32", "F16", "BF16")
MAX_HEADER = 100 * 1024 * 1024


def bf16_to_f32(words: np.ndarray) -> np.ndarray:
    return (words.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(values: np.ndarray) -> np.ndarray:
    """Round to nearest even, as torch does (NaN stays NaN)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(values)
    if nan.any():
        rounded = np.where(nan, (bits >> 16) | 0x40, rounded)
    return rounded.astype(np.uint16)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offsets in the file
    end: int


class SafetensorsFile:
    """One ``.safetensors`` file: the header at once, each tensor on demand (memory-mapped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                raw = handle.read(8)
                if len(raw) < 8:
                    raise ValueError("the file is shorter than its 8-byte header length")
                (n,) = struct.unpack("<Q", raw)
                if n > min(MAX_HEADER, size - 8):
                    raise ValueError(f"header length {n} does not fit the file ({size} bytes)")
                header = json.loads(handle.read(n))
        except (OSError, ValueError) as exc:
            raise CheckpointFormatError(f"{path}: not a readable safetensors file ({exc})") from exc
        base = 8 + n
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        self.tensors: dict[str, TensorInfo] = {}
        for name, spec in header.items():
            start, end = (base + int(x) for x in spec["data_offsets"])
            if end > size:
                raise CheckpointFormatError(
                    f"{path}: tensor {name} ends at byte {end} but the file has {size} - "
                    "the file is truncated; download it again"
                )
            self.tensors[name] = TensorInfo(name, spec["dtype"], tuple(spec["shape"]), start, end)

    def read(self, name: str) -> np.ndarray:
        """The tensor as float32 (floats) or its own numpy dtype (integers), memory-mapped so
        that only the widened copy is allocated."""
        info = self.tensors[name]
        if info.dtype not in _NUMPY_DTYPES and info.dtype != "BF16":
            raise CheckpointFormatError(
                f"{self.path}: tensor {name} has unsupported dtype {info.dtype}"
            )
        stored = np.uint16 if info.dtype == "BF16" else _NUMPY_DTYPES[info.dtype]
        expected = int(np.prod(info.shape, dtype=np.int64))
        if info.end - info.start != expected * np.dtype(stored).itemsize:
            raise CheckpointFormatError(f"{self.path}: tensor {name} has the wrong byte size")
        if expected == 0:
            return np.zeros(info.shape, dtype=np.float32)
        raw = np.memmap(self.path, dtype=stored, mode="r", offset=info.start, shape=(expected,))
        if info.dtype == "BF16":
            widened = raw.astype(np.uint32)
            widened <<= 16
            array = widened.view(np.float32)
        elif info.dtype in FLOAT_DTYPES:
            array = raw.astype(np.float32)
        else:
            array = np.array(raw)
        del raw
        return array.reshape(info.shape)


def write_safetensors(
    path: Path,
    tensors: Iterable[tuple[str, np.ndarray]],
    *,
    dtype: str = "BF16",
    metadata: dict[str, str] | None = None,
) -> None:
    """Write float tensors as ``dtype`` (BF16, F16 or F32), atomically and durably
    (:func:`edge_runtime.atomic.atomic_write`)."""
    items = [(name, _encode(array, dtype)) for name, array in tensors]
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, (raw, shape) in items:
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        offset += len(raw)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(atomic_write(path, mode="wb", suffix=".safetensors"))
        except OSError as exc:
            raise OutputError(f"cannot write into {path.parent}: {exc}") from exc
        handle.write(struct.pack("<Q", len(blob)))
        handle.write(blob)
        for _, (raw, _) in items:
            handle.write(raw)


def _encode(array: np.ndarray, dtype: str) -> tuple[bytes, tuple[int, ...]]:
    values = np.ascontiguousarray(array, dtype=np.float32)
    if dtype == "BF16":
        return f32_to_bf16(values).tobytes(), values.shape
    if dtype in ("F16", "F32"):
        return values.astype(_NUMPY_DTYPES[dtype]).tobytes(), values.shape
    raise ValueError(f"cannot write dtype {dtype}")


def iter_tensor_names(files: Iterable[SafetensorsFile]) -> Iterator[tuple[SafetensorsFile, str]]:
    for file in files:
        for name in file.tensors:
            yield file, name
