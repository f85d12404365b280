"""Per-architecture facts as data: which HF architectures convert, how tensor names map, and the
few value rules that are not plain copies. Adding an architecture is a new entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf

from converter.errors import UnsupportedModelError

# Gemma-3 module names (transformers' modeling_gemma3.Gemma3DecoderLayer); GGUF names come from
# gguf-py's tensor_mapping, so only the HF side is spelled out here.
GEMMA3_GLOBAL_TENSORS = ("model.embed_tokens", "model.norm", "lm_head")
GEMMA3_LAYER_TENSORS = (
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
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ArchitectureSpec:
    gguf_arch: gguf.MODEL_ARCH
    # How a multimodal checkpoint spells the text model's names (v5, v4) -> the text spelling
    text_prefixes: tuple[tuple[str, str], ...]
    # Tensors of other towers, skipped
    skip_prefixes: tuple[str, ...]
    # Gemma3RMSNorm computes x * (1 + w): llama.cpp multiplies by the stored weight, so every
    # *norm.weight is stored as w + 1 (verified on the embedded GGUF).
    norm_shift: float

    @property
    def gguf_arch_name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.gguf_arch]

    def hf_names(self, n_layers: int) -> list[str]:
        layers = [f"model.layers.{i}.{t}" for i in range(n_layers) for t in GEMMA3_LAYER_TENSORS]
        return [*GEMMA3_GLOBAL_TENSORS, *layers]

    def name_map(self, n_layers: int) -> dict[str, str]:
        """HF tensor name (with .weight) -> GGUF tensor name."""
        mapping = gguf.get_tensor_name_map(self.gguf_arch, n_layers)
        out = {}
        for hf in self.hf_names(n_layers):
            name = mapping.get_name(hf + ".weight", try_suffixes=(".weight",))
            if name is None:  # pragma: no cover - a gguf release that lost a mapping
                raise UnsupportedModelError(f"gguf has no GGUF name for {hf}")
            out[hf + ".weight"] = name
        return out

    def text_name(self, name: str) -> str | None:
        """The text model's name for a checkpoint tensor, or None for a tensor to skip."""
        if name.startswith(self.skip_prefixes):
            return None
        for prefix, replacement in self.text_prefixes:
            if name.startswith(prefix):
                return replacement + name[len(prefix) :]
        return name

    def shift(self, gguf_name: str) -> float:
        return self.norm_shift if gguf_name.endswith("norm.weight") else 0.0


GEMMA3 = ArchitectureSpec(
    gguf_arch=gguf.MODEL_ARCH.GEMMA3,
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
    norm_shift=1.0,
)

ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "Gemma3ForCausalLM": GEMMA3,
    "Gemma3ForConditionalGeneration": GEMMA3,  # the text model is extracted
}


def spec_for(architectures: list[str] | None) -> ArchitectureSpec:
    for name in architectures or []:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    raise UnsupportedModelError(
        f"architecture {architectures!r} is not supported; supported: {', '.join(ARCHITECTURES)}"
    )
