"""Broken model files give typed, actionable errors before llama.cpp sees them."""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from edge_runtime.config import RuntimeConfig
from edge_runtime.errors import (
    ModelFormatError,
    ModelNotFoundError,
    UnsupportedArchitectureError,
)
from edge_runtime.gguf_check import inspect_gguf
from edge_runtime.runtime import EdgeRuntime


def _tiny_gguf(path: Path, arch: str, **extra: object) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    for key, value in extra.items():
        if isinstance(value, int):
            writer.add_uint32(key.replace("__", "."), value)
        else:
            writer.add_string(key.replace("__", "."), str(value))
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_embedded_model_is_a_gemma3_q4_k_m(model_path: Path) -> None:
    info = inspect_gguf(model_path)
    assert info.architecture == "gemma3"
    assert info.file_type == "MOSTLY_Q4_K_M"
    assert info.n_tensors == sum(info.tensor_types.values()) > 100
    assert "Q4_K" in info.tensor_types
    assert info.size == model_path.stat().st_size


def _bytes(name: str, data: bytes):  # noqa: ANN202
    def make(model_path: Path, tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    return make


def _truncated(model_path: Path, tmp_path: Path) -> Path:
    out = tmp_path / "truncated.gguf"
    with model_path.open("rb") as src, out.open("wb") as dst:
        dst.write(src.read(50_000_000))
    return out


def _header_only(model_path: Path, tmp_path: Path) -> Path:
    out = tmp_path / "header.gguf"
    out.write_bytes(model_path.read_bytes()[:4096])
    return out


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda m, t: t / "absent.gguf", ModelNotFoundError, "not found"),
        (_bytes("empty.gguf", b""), ModelFormatError, "magic"),
        (_bytes("zip.gguf", b"PK\x03\x04" + b"\0" * 64), ModelFormatError, "magic"),
        (_bytes("v9.gguf", b"GGUF\x09\0\0\0" + b"\0" * 64), ModelFormatError, "version 9"),
        (_bytes("junk.gguf", b"GGUF\x03\0\0\0" + b"\xff" * 64), ModelFormatError, "cannot be read"),
        (_truncated, ModelFormatError, "truncated|cannot be read"),
        (_header_only, ModelFormatError, "truncated|cannot be read"),
        (
            lambda m, t: _tiny_gguf(t / "mamba.gguf", "mamba"),
            UnsupportedArchitectureError,
            "'mamba' model.*gemma3, qwen2, llama",
        ),
        (lambda m, t: _tiny_gguf(t / "p.gguf", "clip"), ModelFormatError, "vision projector"),
        (lambda m, t: _tiny_gguf(t / "e.gguf", "bert"), ModelFormatError, "embedding model"),
        (
            lambda m, t: _tiny_gguf(t / "pooled.gguf", "qwen2", qwen2__pooling_type=1),
            ModelFormatError,
            "embedding model",
        ),
        (lambda m, t: _tiny_gguf(t / "notok.gguf", "llama"), ModelFormatError, "no tokenizer"),
    ],
    ids=[
        "missing",
        "empty",
        "zip",
        "version",
        "garbage",
        "truncated",
        "header-only",
        "unknown-architecture",
        "vision-projector",
        "embedding",
        "pooled",
        "no-tokenizer",
    ],
)
def test_broken_files_give_typed_errors(
    make: object, error: type[Exception], message: str, model_path: Path, tmp_path: Path
) -> None:
    path = make(model_path, tmp_path)  # type: ignore[operator]
    with pytest.raises(error, match=message):
        inspect_gguf(path)
    # and the runtime refuses them the same way, without reaching llama.cpp
    with pytest.raises(error):
        EdgeRuntime.load(RuntimeConfig(model=str(path), n_threads=1), home=tmp_path / "home")


def test_errors_are_also_standard_exceptions(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_gguf(tmp_path / "nope.gguf")
    (tmp_path / "bad.gguf").write_bytes(b"nope")
    with pytest.raises(ValueError):
        inspect_gguf(tmp_path / "bad.gguf")


def test_a_copy_of_the_model_under_another_name_is_accepted(
    model_path: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.gguf"
    shutil.copy(model_path, copy)
    assert inspect_gguf(copy).architecture == "gemma3"
