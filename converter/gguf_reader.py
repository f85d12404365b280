"""``gguf.GGUFReader`` with long metadata arrays read in one sweep.

gguf's reader builds every array item through a ``numpy.memmap`` slice, a view and a byte-order
view: on Gemma-3's 262,144-token vocabulary (tokens, scores, token types) that is ~10 s per
file, paid by every conversion and check that opens one. This subclass builds the very same
fields (same parts, same indexes, same types: ``contents()`` and every other reader API behave
as before) from plain-array views and a length walk in Python, ~25x faster. Only
little-endian arrays of scalars or strings take the fast path; anything else (a byte-swapped
file, arrays of arrays) goes through gguf's own code. The tensors are gguf's, untouched.
"""

from __future__ import annotations

from typing import Any

import gguf
import numpy as np
import numpy.typing as npt

_U64 = np.dtype("<u8")


class GGUFReader(gguf.GGUFReader):
    def _get_field_parts(
        self, orig_offs: int, raw_type: int
    ) -> tuple[int, list[npt.NDArray[Any]], list[int], list[gguf.GGUFValueType]]:
        if raw_type != gguf.GGUFValueType.ARRAY or self.byte_order != "I":
            return super()._get_field_parts(orig_offs, raw_type)
        raw = self.data.view(np.ndarray)  # plain views: no memmap bookkeeping per item
        item_type = gguf.GGUFValueType(int(raw[orig_offs : orig_offs + 4].view("<u4")[0]))
        scalar = self.gguf_scalar_to_np.get(item_type)
        if scalar is None and item_type != gguf.GGUFValueType.STRING:
            return super()._get_field_parts(orig_offs, raw_type)
        head = [raw[orig_offs : orig_offs + 4].view(np.uint32), raw[orig_offs + 4 : orig_offs + 12]]
        head[1] = head[1].view(np.uint64)
        count, offs = int(head[1][0]), orig_offs + 12
        if scalar is not None:
            parts, offs = _scalars(raw, offs, count, np.dtype(scalar))
        else:
            parts, offs = _strings(raw, offs, count)
        data = list(range(2, 2 + count)) if scalar is not None else list(range(3, 2 + 2 * count, 2))
        types = [gguf.GGUFValueType.ARRAY] + ([item_type] if count else [])  # as gguf's own
        return offs - orig_offs, head + parts, data, types


def _scalars(
    raw: npt.NDArray[np.uint8], offs: int, count: int, dtype: np.dtype[Any]
) -> tuple[list[npt.NDArray[Any]], int]:
    end = offs + dtype.itemsize * count
    if end > len(raw):
        raise ValueError("a metadata array runs past the end of the file")
    values = raw[offs:end].view(dtype)
    return [values[i : i + 1] for i in range(count)], end


def _strings(
    raw: npt.NDArray[np.uint8], offs: int, count: int
) -> tuple[list[npt.NDArray[Any]], int]:
    buffer = memoryview(raw.data)  # bytes of the map, no numpy object per read
    parts: list[npt.NDArray[Any]] = []
    for _ in range(count):
        length = int.from_bytes(buffer[offs : offs + 8], "little")
        start, end = offs + 8, offs + 8 + length
        if end > len(raw):
            raise ValueError("a metadata string runs past the end of the file")
        parts += (raw[offs:start].view(_U64), raw[start:end])
        offs = end
    return parts, offs
