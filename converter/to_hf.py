"""GGUF -> Hugging Face checkpoint: bf16 safetensors, config.json and a real tokenizer.model.

Quantized tensors are dequantized with gguf's numpy kernels; Gemma's norm weights are shifted
back (GGUF stores w + 1); the vocabulary becomes a SentencePiece ModelProto. No torch needed.
The folder appears only when complete (built beside it, then renamed).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from tqdm import tqdm

from converter.architectures import GEMMA3
from converter.errors import CheckpointFormatError, OutputError, UnsupportedModelError
from converter.hf_config import FULL, SLIDING, Gemma3Config, _pattern_layers
from converter.safetensors_io import write_safetensors
from converter.tokenizer import vocab_from_gguf_fields, write_hf_tokenizer


def read_fields(reader: gguf.GGUFReader) -> dict[str, Any]:
    return {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}


def config_from_gguf(fields: dict[str, Any]) -> Gemma3Config:
    arch = fields.get("general.architecture")
    if arch != "gemma3":
        raise UnsupportedModelError(f"only gemma3 GGUFs convert back to HF, this is {arch!r}")

    def key(name: str, default: Any = None) -> Any:
        value = fields.get(f"gemma3.{name}", default)
        if value is None:
            raise CheckpointFormatError(f"the GGUF lacks gemma3.{name}")
        return value

    n_layers = int(key("block_count"))
    pattern = fields.get("gemma3.attention.sliding_window_pattern")
    if isinstance(pattern, list):
        layer_types = tuple(SLIDING if swa else FULL for swa in pattern)
    else:
        layer_types = _pattern_layers(n_layers, int(pattern or 6))
    return Gemma3Config(
        vocab_size=len(fields["tokenizer.ggml.tokens"]),
        hidden_size=int(key("embedding_length")),
        intermediate_size=int(key("feed_forward_length")),
        num_hidden_layers=n_layers,
        num_attention_heads=int(key("attention.head_count")),
        num_key_value_heads=int(key("attention.head_count_kv")),
        head_dim=int(key("attention.key_length")),
        max_position_embeddings=int(key("context_length")),
        rms_norm_eps=float(key("attention.layer_norm_rms_epsilon")),
        rope_theta=float(key("rope.freq_base", 1_000_000.0)),
        rope_local_base_freq=float(key("rope.freq_base_swa", 10_000.0)),
        sliding_window=int(key("attention.sliding_window")),
        layer_types=layer_types,
        rope_scaling_factor=fields.get("gemma3.rope.scaling.factor"),
        final_logit_softcapping=fields.get("gemma3.final_logit_softcapping"),
        query_pre_attn_scalar=int(key("attention.key_length")),
        tie_word_embeddings=True,
        multimodal=False,
    )


def gguf_to_hf(gguf_path: str | Path, out_dir: str | Path, *, progress: bool = True) -> Path:
    """Write ``out_dir`` (must not exist yet) as a bf16 Gemma3ForCausalLM checkpoint."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise OutputError(f"{out_dir} already exists and is not empty - choose a new folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"the parent folder {out_dir.parent} does not exist")
    try:
        reader = gguf.GGUFReader(gguf_path)
    except (OSError, ValueError) as exc:
        raise CheckpointFormatError(f"{gguf_path} is not a readable GGUF ({exc})") from exc
    fields = read_fields(reader)
    config = config_from_gguf(fields)
    vocab = vocab_from_gguf_fields(fields)
    reverse = {g: h for h, g in GEMMA3.name_map(config.num_hidden_layers).items()}
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:
        raise OutputError(f"cannot write into {out_dir.parent}: {exc}") from exc
    try:
        tensors = []
        for tensor in tqdm(reader.tensors, desc="dequantize", unit="tensor", disable=not progress):
            if tensor.name not in reverse:
                raise UnsupportedModelError(f"unexpected GGUF tensor {tensor.name}")
            # bit-reproducible on any CPU: gguf's numpy kernels only widen (f16 -> f32 and
            # integers -> f32 are exact) and apply elementwise IEEE multiplies/adds, each
            # correctly rounded; no BLAS, no reduction (likewise the shift and f32_to_bf16)
            values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            shift = GEMMA3.shift(tensor.name)
            tensors.append((reverse[tensor.name], values - np.float32(shift) if shift else values))
        if "output.weight" in {t.name for t in reader.tensors}:
            config = replace(config, tie_word_embeddings=False)
        write_safetensors(staging / "model.safetensors", tensors, dtype="BF16")
        del tensors
        (staging / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=1))
        generation = {
            "bos_token_id": vocab.bos_id,
            "eos_token_id": [vocab.eos_id, 106],
            "pad_token_id": vocab.pad_id,
        }
        (staging / "generation_config.json").write_text(json.dumps(generation, indent=1))
        write_hf_tokenizer(vocab, staging)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
