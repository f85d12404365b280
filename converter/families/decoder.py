"""Llama and Qwen2: the plain pre-norm decoder (RMSNorm, SwiGLU, grouped-query attention, RoPE).

Their quirks, each in one place:
- Qwen2 has biases on q/k/v (``attention_bias`` is implied, never written in its config).
- llama.cpp's llama graph rotates interleaved pairs where transformers rotates halves, so the
  reference converter permutes the rows of q and k per head (``permute_qk``); Qwen2's graph
  rotates halves (NEOX), so its weights are copied.
- RoPE: default, linear and Llama 3's scaling (a ``rope_freqs`` tensor): see families.rope.
- ``tie_word_embeddings``: a tied model has no ``lm_head`` in GGUF (llama.cpp reuses token_embd).
- Both read byte-level BPE (``tokenizer.json`` with merges): see converter.bpe_vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gguf
import numpy as np

from converter.errors import UnsupportedModelError
from converter.families.base import Family, layer_tensors, unchanged, write_shape
from converter.families.rope import Rope, llama3_divisors, llama3_from_divisors, read_rope

MLP_AND_NORMS = (
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
)
ATTENTION = tuple(f"self_attn.{m}_proj.weight" for m in ("q", "k", "v", "o"))
ROPE_FREQS = "rope_freqs.weight"  # Llama 3's RoPE scaling: per-frequency divisors, F32
QKV_BIASES = tuple(f"self_attn.{m}_proj.bias" for m in ("q", "k", "v"))


@dataclass(frozen=True)
class DecoderConfig:
    model_type: str  # "llama" or "qwen2"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    explicit_head_dim: bool  # config.json states head_dim (the reference then writes key_length)
    max_position_embeddings: int
    rms_norm_eps: float
    rope: Rope
    tie_word_embeddings: bool
    qkv_bias: bool


def _require(config: dict[str, Any], key: str, family: str) -> Any:
    if config.get(key) is None:
        raise UnsupportedModelError(f"config.json has no '{key}' - is this a {family} checkpoint?")
    return config[key]


def parse_config(raw: dict[str, Any]) -> DecoderConfig:
    model_type = raw.get("model_type")
    if model_type not in ("llama", "qwen2"):
        raise UnsupportedModelError(f"model_type {model_type!r} is neither llama nor qwen2")
    family = "Llama" if model_type == "llama" else "Qwen2"
    heads = int(_require(raw, "num_attention_heads", family))
    hidden = int(_require(raw, "hidden_size", family))
    rope = read_rope(raw)
    if rope.llama3 is not None and model_type != "llama":
        raise UnsupportedModelError(
            "llama3 RoPE scaling on a Qwen2: llama.cpp's qwen2 graph has none"
        )
    parsed = DecoderConfig(
        model_type=model_type,
        vocab_size=int(_require(raw, "vocab_size", family)),
        hidden_size=hidden,
        intermediate_size=int(_require(raw, "intermediate_size", family)),
        num_hidden_layers=int(_require(raw, "num_hidden_layers", family)),
        num_attention_heads=heads,
        num_key_value_heads=int(raw.get("num_key_value_heads") or heads),
        head_dim=int(raw.get("head_dim") or hidden // heads),
        explicit_head_dim=raw.get("head_dim") is not None,
        max_position_embeddings=int(raw.get("max_position_embeddings") or 4096),
        rms_norm_eps=float(raw.get("rms_norm_eps") or 1e-6),
        rope=rope,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),  # transformers default
        qkv_bias=model_type == "qwen2",
    )
    _check_llama_cpp_compatible(parsed, raw)
    return parsed


def _check_llama_cpp_compatible(parsed: DecoderConfig, raw: dict[str, Any]) -> None:
    problems = []
    if (raw.get("hidden_act") or "silu") != "silu":
        problems.append(f"hidden_act {raw['hidden_act']!r}: llama.cpp's graph uses SiLU")
    if parsed.model_type == "llama" and (raw.get("attention_bias") or raw.get("mlp_bias")):
        problems.append("attention or MLP biases on a Llama: this converter does not write them")
    if parsed.model_type == "qwen2" and raw.get("use_sliding_window"):
        problems.append("use_sliding_window: llama.cpp's qwen2 graph has no sliding window")
    if parsed.num_attention_heads % parsed.num_key_value_heads:
        problems.append("num_attention_heads is not a multiple of num_key_value_heads")
    if problems:
        raise UnsupportedModelError(
            "this checkpoint would run wrong in llama.cpp: " + "; ".join(problems)
        )


def hf_tensors(config: DecoderConfig) -> list[str]:
    per_layer = ATTENTION + MLP_AND_NORMS + (QKV_BIASES if config.qkv_bias else ())
    globals_ = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    return [*globals_, *layer_tensors(config.num_hidden_layers, per_layer)]


def write_metadata(writer: gguf.GGUFWriter, c: DecoderConfig) -> None:
    write_shape(writer, c)
    writer.add_rope_freq_base(c.rope.theta)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    if c.explicit_head_dim:
        writer.add_key_length(c.head_dim)
        writer.add_value_length(c.head_dim)
    if c.model_type == "llama":
        writer.add_vocab_size(c.vocab_size)
        writer.add_rope_dimension_count(c.head_dim)
    if c.rope.linear_factor:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(c.rope.linear_factor)
    # llama3 scaling has no keys: its divisors are a tensor (extra_tensors)


def extra_tensors(c: DecoderConfig) -> list[tuple[str, np.ndarray]]:
    """Tensors made from the config, written before the weights (as the reference does)."""
    if c.rope.llama3 is None:
        return []
    return [(ROPE_FREQS, llama3_divisors(c.rope.theta, c.head_dim, c.rope.llama3))]


def rope_from_gguf(fields: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """HF ``rope_parameters`` for a Llama GGUF whose ``rope_freqs.weight`` carries Llama 3's
    scaling (transformers' GGUF loader skips that tensor), else None."""
    divisors = tensors.get(ROPE_FREQS)
    if divisors is None:
        return None
    arch = fields.get("general.architecture")
    theta = float(fields.get(f"{arch}.rope.freq_base") or 10_000.0)
    head_dim = int(
        fields.get(f"{arch}.rope.dimension_count")
        or fields[f"{arch}.embedding_length"] // fields[f"{arch}.attention.head_count"]
    )
    return llama3_from_divisors(divisors, theta, head_dim).to_hf(theta)


def permute_qk(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of each head from halves order (transformers) to interleaved pairs (llama.cpp)."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def llama_to_gguf(gguf_name: str, data: np.ndarray, config: DecoderConfig) -> np.ndarray:
    if gguf_name.endswith("attn_q.weight"):
        return permute_qk(data, config.num_attention_heads)
    if gguf_name.endswith("attn_k.weight"):
        return permute_qk(data, config.num_key_value_heads)
    return data


LLAMA = Family(
    name="llama",
    architectures=("LlamaForCausalLM",),
    gguf_arch=gguf.MODEL_ARCH.LLAMA,
    tokenizer="gpt2",
    hf_tensors=hf_tensors,
    parse_config=parse_config,
    write_metadata=write_metadata,
    to_gguf=llama_to_gguf,
    extra_tensors=extra_tensors,
)
QWEN2 = Family(
    name="qwen2",
    architectures=("Qwen2ForCausalLM",),
    gguf_arch=gguf.MODEL_ARCH.QWEN2,
    tokenizer="gpt2",
    hf_tensors=hf_tensors,
    parse_config=parse_config,
    write_metadata=write_metadata,
    to_gguf=unchanged,  # NEOX rotation: as transformers
)
