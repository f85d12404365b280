"""Gemma-3: its config (either transformers spelling, checked against llama.cpp), tensors and
GGUF keys.

transformers v5 writes ``rope_parameters`` ({"full_attention": {...}, "sliding_attention": {...}})
and ``layer_types`` with ``rope_theta: null`` at the top level; configs written by v4 use
``rope_theta``, ``rope_local_base_freq``, ``sliding_window_pattern`` and ``rope_scaling``.
``Gemma3ForConditionalGeneration`` (model_type ``gemma3``) nests the text model in
``text_config``: the text model is extracted and the vision tower skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gguf
import numpy as np

from converter.errors import CheckpointFormatError, UnsupportedModelError
from converter.families.base import Family, layer_tensors, write_shape

TEXT_MODEL_TYPES = ("gemma3_text",)
MULTIMODAL_MODEL_TYPES = ("gemma3",)
LLAMA_CPP_DEFAULT_SWA_PATTERN = 6  # llama.cpp assumes every 6th layer global unless told
FULL, SLIDING = "full_attention", "sliding_attention"


@dataclass(frozen=True)
class Gemma3Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope_theta: float  # global (full-attention) layers
    rope_local_base_freq: float  # sliding-window layers
    sliding_window: int
    layer_types: tuple[str, ...]
    rope_scaling_factor: float | None  # linear scaling of the global layers, if any
    final_logit_softcapping: float | None
    query_pre_attn_scalar: int
    tie_word_embeddings: bool
    multimodal: bool  # read from a Gemma3ForConditionalGeneration checkpoint

    @property
    def default_swa_pattern(self) -> bool:
        """True when llama.cpp's built-in pattern (every 6th layer global) is the right one."""
        return self.layer_types == _pattern_layers(
            self.num_hidden_layers, LLAMA_CPP_DEFAULT_SWA_PATTERN
        )

    def to_hf_dict(self) -> dict[str, Any]:
        """config.json for Gemma3ForCausalLM, in the v5 spelling (v4 keys kept for old readers)."""
        rope_full: dict[str, Any] = {"rope_type": "default", "rope_theta": self.rope_theta}
        if self.rope_scaling_factor:
            rope_full = {**rope_full, "rope_type": "linear", "factor": self.rope_scaling_factor}
        return {
            "architectures": ["Gemma3ForCausalLM"],
            "model_type": "gemma3_text",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": {
                FULL: rope_full,
                SLIDING: {"rope_type": "default", "rope_theta": self.rope_local_base_freq},
            },
            "sliding_window": self.sliding_window,
            "layer_types": list(self.layer_types),
            "final_logit_softcapping": self.final_logit_softcapping,
            "attn_logit_softcapping": None,
            "query_pre_attn_scalar": int(self.query_pre_attn_scalar),
            "hidden_activation": "gelu_pytorch_tanh",
            "tie_word_embeddings": self.tie_word_embeddings,
            "use_bidirectional_attention": False,
            "bos_token_id": 2,
            "eos_token_id": 1,
            "pad_token_id": 0,
            "torch_dtype": "bfloat16",
            "dtype": "bfloat16",
        }


def _pattern_layers(n_layers: int, pattern: int) -> tuple[str, ...]:
    return tuple(FULL if (i + 1) % pattern == 0 else SLIDING for i in range(n_layers))


def _require(config: dict[str, Any], key: str) -> Any:
    if config.get(key) is None:
        raise UnsupportedModelError(f"config.json has no '{key}' - is this a Gemma-3 checkpoint?")
    return config[key]


def parse_config(raw: dict[str, Any]) -> Gemma3Config:
    """Normalise a config.json dict; refuse what llama.cpp's gemma3 graph would run wrong."""
    model_type = raw.get("model_type")
    multimodal = model_type in MULTIMODAL_MODEL_TYPES
    config = dict(raw.get("text_config") or {}) if multimodal else raw
    if not (model_type in TEXT_MODEL_TYPES or multimodal):
        supported = ", ".join(TEXT_MODEL_TYPES + MULTIMODAL_MODEL_TYPES)
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not supported; this converter handles {supported} "
            "(Gemma-3)"
        )
    n_layers = int(_require(config, "num_hidden_layers"))
    rope_params: dict[str, Any] = config.get("rope_parameters") or {}
    full: dict[str, Any] = rope_params.get(FULL) or (
        rope_params if "rope_theta" in rope_params else {}
    )
    sliding: dict[str, Any] = rope_params.get(SLIDING) or {}
    rope_theta = full.get("rope_theta", config.get("rope_theta")) or 1_000_000.0
    local_base = sliding.get("rope_theta", config.get("rope_local_base_freq")) or 10_000.0
    scaling: dict[str, Any] = full if rope_params else (config.get("rope_scaling") or {})
    layer_types = tuple(
        config.get("layer_types")
        or _pattern_layers(n_layers, int(config.get("sliding_window_pattern") or 6))
    )
    head_dim = int(config.get("head_dim") or 256)
    parsed = Gemma3Config(
        vocab_size=int(_require(config, "vocab_size")),
        hidden_size=int(_require(config, "hidden_size")),
        intermediate_size=int(_require(config, "intermediate_size")),
        num_hidden_layers=n_layers,
        num_attention_heads=int(_require(config, "num_attention_heads")),
        num_key_value_heads=int(config.get("num_key_value_heads") or 4),
        head_dim=head_dim,
        max_position_embeddings=int(config.get("max_position_embeddings") or 131072),
        rms_norm_eps=float(config.get("rms_norm_eps") or 1e-6),
        rope_theta=float(rope_theta),
        rope_local_base_freq=float(local_base),
        sliding_window=int(_require(config, "sliding_window")),
        layer_types=layer_types,
        rope_scaling_factor=_scaling_factor(scaling),
        final_logit_softcapping=config.get("final_logit_softcapping"),
        query_pre_attn_scalar=int(config.get("query_pre_attn_scalar") or head_dim),
        tie_word_embeddings=bool(
            raw.get("tie_word_embeddings", config.get("tie_word_embeddings", True))
        ),
        multimodal=multimodal,
    )
    _check_llama_cpp_compatible(parsed, config)
    return parsed


def _scaling_factor(scaling: dict[str, Any]) -> float | None:
    kind = scaling.get("rope_type") or scaling.get("type")
    if kind in (None, "default"):
        return None
    if kind == "linear" and scaling.get("factor"):
        return float(scaling["factor"])
    raise UnsupportedModelError(f"RoPE scaling {scaling!r} is not supported (only linear)")


def _check_llama_cpp_compatible(parsed: Gemma3Config, config: dict[str, Any]) -> None:
    problems = []
    if config.get("attn_logit_softcapping") is not None:
        problems.append("attn_logit_softcapping is set, but llama.cpp's gemma3 graph has none")
    if parsed.query_pre_attn_scalar != parsed.head_dim:
        problems.append(
            f"query_pre_attn_scalar {parsed.query_pre_attn_scalar} != head_dim {parsed.head_dim}: "
            "llama.cpp scales attention by 1/sqrt(head_dim)"
        )
    activation = config.get("hidden_activation") or config.get("hidden_act") or "gelu_pytorch_tanh"
    if activation != "gelu_pytorch_tanh":
        problems.append(f"hidden_activation {activation!r}: llama.cpp uses tanh-approximated GELU")
    if config.get("use_bidirectional_attention"):
        problems.append("bidirectional attention (an embedding model) is not a causal LM")
    if len(parsed.layer_types) != parsed.num_hidden_layers or set(parsed.layer_types) - {
        FULL,
        SLIDING,
    }:
        problems.append(f"layer_types {parsed.layer_types!r} do not describe every layer")
    if problems:
        raise UnsupportedModelError(
            "this checkpoint would run wrong in llama.cpp: " + "; ".join(problems)
        )


# -- tensors and GGUF ------------------------------------------------------------------------------
# transformers' modeling_gemma3.Gemma3DecoderLayer module names
LAYER_TENSORS = tuple(
    f"{module}.weight"
    for module in (
        "input_layernorm",
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "self_attn.q_norm",
        "self_attn.k_norm",
        "post_attention_layernorm",
        "pre_feedforward_layernorm",
        "post_feedforward_layernorm",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    )
)
# Gemma3RMSNorm computes x * (1 + w): llama.cpp multiplies by the stored weight, so every
# *norm.weight is stored as w + 1 (verified on the embedded GGUF).
NORM_SHIFT = np.float32(1.0)


def hf_tensors(config: Gemma3Config) -> list[str]:
    globals_ = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    return [*globals_, *layer_tensors(config.num_hidden_layers, LAYER_TENSORS)]


def is_norm(gguf_name: str) -> bool:
    return gguf_name.endswith("norm.weight")


def to_gguf(gguf_name: str, data: np.ndarray, config: Gemma3Config) -> np.ndarray:
    # elementwise, correctly rounded: the same bits on any CPU
    return data + NORM_SHIFT if is_norm(gguf_name) else data


def from_gguf(gguf_name: str, data: np.ndarray) -> np.ndarray:
    return data - NORM_SHIFT if is_norm(gguf_name) else data


def write_metadata(writer: gguf.GGUFWriter, c: Gemma3Config) -> None:
    write_shape(writer, c)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_key_length(c.head_dim)  # head_dim 256 != hidden / heads at 270M
    writer.add_value_length(c.head_dim)
    writer.add_rope_freq_base(c.rope_theta)
    writer.add_rope_freq_base_swa(c.rope_local_base_freq)
    writer.add_sliding_window(c.sliding_window)
    if not c.default_swa_pattern:  # llama.cpp reads the per-layer pattern when given
        writer.add_sliding_window_pattern([t == SLIDING for t in c.layer_types])
    if c.rope_scaling_factor:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(c.rope_scaling_factor)
    if c.final_logit_softcapping:
        writer.add_final_logit_softcapping(c.final_logit_softcapping)


def config_from_gguf(fields: dict[str, Any]) -> Gemma3Config:
    """The config of a gemma3 GGUF (its ``gemma3.*`` keys), for writing config.json."""

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


GEMMA3 = Family(
    name="gemma3",
    architectures=("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"),
    gguf_arch=gguf.MODEL_ARCH.GEMMA3,
    tokenizer="llama",
    hf_tensors=hf_tensors,
    parse_config=parse_config,
    write_metadata=write_metadata,
    to_gguf=to_gguf,
    text_prefixes=(
        ("model.language_model.", "model."),
        ("language_model.model.", "model."),
        ("language_model.lm_head.", "lm_head."),
    ),
    skip_prefixes=(
        "vision_tower.",
        "multi_modal_projector.",
        "model.vision_tower.",
        "model.multi_modal_projector.",
    ),
)
