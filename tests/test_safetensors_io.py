from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from converter.errors import CheckpointFormatError
from converter.safetensors_io import SafetensorsFile, bf16_to_f32, f32_to_bf16, write_safetensors


def test_bf16_rounding_matches_torch() -> None:
    values = np.random.default_rng(0).normal(0, 3, 100_000).astype(np.float32)
    values[:4] = [0.0, -0.0, 1e-40, 65504.0]
    ours = f32_to_bf16(values)
    theirs = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(ours, theirs)
    widened = bf16_to_f32(ours)
    assert np.array_equal(widened, torch.from_numpy(values).to(torch.bfloat16).float().numpy())


def test_round_trip_and_safetensors_compatibility(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    tensors = [("a.weight", np.arange(12, dtype=np.float32).reshape(3, 4)), ("b", np.ones(5))]
    for dtype in ("BF16", "F16", "F32"):
        path = tmp_path / f"{dtype}.safetensors"
        write_safetensors(path, tensors, dtype=dtype)
        ours = SafetensorsFile(path)
        reference = load_file(path)  # the official reader accepts what we write
        for name, array in tensors:
            assert np.array_equal(ours.read(name), array.astype(np.float32))
            assert np.array_equal(reference[name].float().numpy(), array.astype(np.float32))


def test_truncated_and_garbled_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    write_safetensors(path, [("w", np.ones((64, 64)))], dtype="BF16")
    data = path.read_bytes()
    (tmp_path / "short.safetensors").write_bytes(data[:-100])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        SafetensorsFile(tmp_path / "short.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointFormatError):
        SafetensorsFile(tmp_path / "tiny.safetensors")
    header = b"{not json"
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointFormatError):
        SafetensorsFile(tmp_path / "bad.safetensors")
    huge = struct.pack("<Q", 1 << 40) + json.dumps({}).encode()
    (tmp_path / "huge.safetensors").write_bytes(huge)
    with pytest.raises(CheckpointFormatError, match="does not fit"):
        SafetensorsFile(tmp_path / "huge.safetensors")
