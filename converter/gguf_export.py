"""Write a Hugging Face checkpoint of a supported family (optionally with a LoRA merged in) as GGUF.

Two passes over the checkpoint: the first reads only safetensors headers to lay out the tensor
table, the second streams one tensor at a time (read, merge, the family's value rule, quantize,
write), so memory stays near the largest tensor rather than the whole model. The file appears
only when complete (temporary file + rename).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

import gguf
import numpy as np
from tqdm import tqdm

from converter.bpe_vocab import BpeVocab, read_bpe_vocab
from converter.checkpoint import Checkpoint, open_checkpoint
from converter.errors import (
    CheckpointFormatError,
    ConverterError,
    OutputError,
    UnsupportedModelError,
)
from converter.lora import LoraAdapter, load_adapter
from converter.tokenizer import Vocab, read_vocab
from edge_runtime.atomic import atomic_path

log = logging.getLogger(__name__)

Q = gguf.GGMLQuantizationType


E = TypeVar("E", bound=Enum)


def parse_choice(cls: type[E], text: str, flag: str) -> E:
    """A member of a string Enum, matched case-insensitively; a clear error naming the flag."""
    for member in cls:
        if member.value.lower() == text.lower():
            return member
    raise ValueError(f"{flag} must be one of {', '.join(m.value for m in cls)}")


class OutType(str, Enum):
    F32 = "f32"
    F16 = "f16"
    BF16 = "bf16"
    Q8_0 = "q8_0"

    @classmethod
    def parse(cls, text: str) -> OutType:
        return parse_choice(cls, text, "--dtype")

    @property
    def ggml_type(self) -> gguf.GGMLQuantizationType:
        return {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0}[self.value]

    @property
    def file_type(self) -> gguf.LlamaFileType:
        return {
            "f32": gguf.LlamaFileType.ALL_F32,
            "f16": gguf.LlamaFileType.MOSTLY_F16,
            "bf16": gguf.LlamaFileType.MOSTLY_BF16,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        }[self.value]


@dataclass(frozen=True)
class PlannedTensor:
    hf_name: str
    gguf_name: str
    shape: tuple[int, ...]  # numpy order, after trimming
    ggml_type: gguf.GGMLQuantizationType


def tensor_type(gguf_name: str, shape: tuple[int, ...], out: OutType) -> gguf.GGMLQuantizationType:
    """The reference converter's rule: 1-D tensors and norms stay F32; Q8_0 needs rows that are
    multiples of 32, else F16."""
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight"):
        return Q.F32
    if out is OutType.Q8_0 and shape[-1] % gguf.GGML_QUANT_SIZES[Q.Q8_0][0] != 0:
        return Q.F16
    return out.ggml_type


def plan(checkpoint: Checkpoint, out: OutType, n_vocab: int) -> list[PlannedTensor]:
    config = checkpoint.config
    name_map = checkpoint.family.name_map(config)
    planned = []
    for hf_name, (file, stored) in checkpoint.tensor_names().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # tied: llama.cpp reuses token_embd
        if hf_name not in name_map:
            raise UnsupportedModelError(f"unexpected tensor {stored!r}: no GGUF name for it")
        info = file.tensors[stored]
        if info.dtype not in ("F32", "F16", "BF16"):
            raise CheckpointFormatError(f"tensor {stored} is {info.dtype}; weights must be floats")
        shape = info.shape
        if hf_name == "model.embed_tokens.weight":
            shape = (min(shape[0], n_vocab), *shape[1:])  # drop rows beyond the vocabulary
        gguf_name = name_map[hf_name]
        planned.append(PlannedTensor(hf_name, gguf_name, shape, tensor_type(gguf_name, shape, out)))
    missing = set(name_map) - {p.hf_name for p in planned} - {"lm_head.weight"}
    if missing:
        raise CheckpointFormatError(
            f"the checkpoint lacks {len(missing)} tensors, e.g. {sorted(missing)[0]}"
        )
    return planned


def write_metadata(
    writer: gguf.GGUFWriter,
    checkpoint: Checkpoint,
    out: OutType,
    vocab: Vocab | BpeVocab,
    name: str,
) -> None:
    writer.add_type("model")
    writer.add_name(name)
    writer.add_file_type(out.file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    checkpoint.family.write_metadata(writer, checkpoint.config)
    vocab.write_to(writer)


def read_checkpoint_vocab(checkpoint: Checkpoint) -> Vocab | BpeVocab:
    vocab_size = checkpoint.config.vocab_size
    if checkpoint.family.tokenizer == "gpt2":
        return read_bpe_vocab(checkpoint.directory, vocab_size)
    return read_vocab(checkpoint.directory, vocab_size, checkpoint.raw_config)


def export_gguf(
    source: str | Path,
    out_path: Path,
    *,
    out_type: OutType = OutType.F16,
    adapter: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Convert ``source`` (folder or hub id) to a GGUF at ``out_path``; return the path."""
    checkpoint = open_checkpoint(source)
    vocab = read_checkpoint_vocab(checkpoint)
    lora = load_adapter(adapter, checkpoint) if adapter is not None else None
    planned = plan(checkpoint, out_type, len(vocab.tokens))
    out_path = Path(out_path)
    with atomic_output(out_path) as tmp:
        writer = gguf.GGUFWriter(tmp, arch=checkpoint.family.gguf_arch_name)
        write_metadata(writer, checkpoint, out_type, vocab, checkpoint.directory.name)
        extras = checkpoint.family.extra_tensors(checkpoint.config)
        for name, values in extras:  # first, as the reference converter writes them
            writer.add_tensor_info(name, values.shape, values.dtype, values.nbytes)
        for p in planned:
            block, type_size = gguf.GGML_QUANT_SIZES[p.ggml_type]
            nbytes = int(np.prod(p.shape)) // block * type_size
            # a float dtype tells the writer that p.shape is the logical shape, not bytes
            writer.add_tensor_info(
                p.gguf_name, p.shape, np.dtype(np.float32), nbytes, raw_dtype=p.ggml_type
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _, values in extras:
            writer.write_tensor_data(values)
        names = checkpoint.tensor_names()
        for p in tqdm(
            planned, desc=f"export {out_type.value}", unit="tensor", disable=not progress
        ):
            file, stored = names[p.hf_name]
            writer.write_tensor_data(_prepare(checkpoint, p, file.read(stored), lora))
        writer.close()
    return out_path


def _prepare(
    checkpoint: Checkpoint, p: PlannedTensor, data: np.ndarray, lora: LoraAdapter | None
) -> np.ndarray:
    data = data.astype(np.float32, copy=False)
    if lora is not None:
        data = lora.merged(p.hf_name, data)
    if p.hf_name == "model.embed_tokens.weight":
        data = data[: p.shape[0]]
    data = checkpoint.family.to_gguf(p.gguf_name, data, checkpoint.config)
    if p.ggml_type is Q.F32:  # written as is: no second copy of a 670 MB embedding
        return np.ascontiguousarray(data)
    return gguf.quants.quantize(np.ascontiguousarray(data), p.ggml_type)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that becomes it when the block completes (fsync'd and
    renamed; removed if the block fails: :func:`edge_runtime.atomic.atomic_path`). An OSError
    becomes an :class:`OutputError` naming the folder or the file."""
    if not path.parent.is_dir():
        raise OutputError(f"the output folder {path.parent} does not exist")
    started = False
    try:
        with atomic_path(path) as tmp:
            started = True
            yield tmp
    except OSError as exc:
        if isinstance(exc, ConverterError):  # already says what failed
            raise
        where = str(path) if started else f"into {path.parent}"
        raise OutputError(f"cannot write {where}: {exc}") from exc
