"""What the converter knows of a model family: one record per family, facts as data.

A family names the Hugging Face architectures it reads, its GGUF architecture, the HF tensor
names of its text model (gguf-py's tensor mapping gives the GGUF names), how its config.json is
read and checked, the GGUF keys it writes, and the value rules that are not plain copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gguf
import numpy as np

from converter.errors import UnsupportedModelError


class TextConfig(Protocol):
    """The fields every family's parsed config has (the export plans tensors with them)."""

    @property
    def vocab_size(self) -> int: ...
    @property
    def num_hidden_layers(self) -> int: ...
    @property
    def tie_word_embeddings(self) -> bool: ...


@dataclass(frozen=True)
class Family:
    name: str
    architectures: tuple[str, ...]  # the HF classes read (the text model of a wrapper)
    gguf_arch: gguf.MODEL_ARCH
    tokenizer: str  # the GGUF tokenizer model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    hf_tensors: Callable[[Any], list[str]]  # every text-model tensor, with .weight / .bias
    parse_config: Callable[[dict[str, Any]], Any]  # config.json -> the family's config
    write_metadata: Callable[[gguf.GGUFWriter, Any], None]  # the family's GGUF keys
    # value rule for one tensor on its way into GGUF (after a LoRA merge): e.g. Gemma's norms
    to_gguf: Callable[[str, np.ndarray, Any], np.ndarray]
    # how a multimodal checkpoint spells the text model's names -> the text spelling
    text_prefixes: tuple[tuple[str, str], ...] = ()
    skip_prefixes: tuple[str, ...] = ()  # tensors of other towers, skipped
    # tensors made from the config (GGUF name, F32 values), e.g. Llama 3's rope_freqs
    extra_tensors: Callable[[Any], list[tuple[str, np.ndarray]]] = lambda config: []

    @property
    def gguf_arch_name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.gguf_arch]

    def name_map(self, config: Any) -> dict[str, str]:
        """HF tensor name -> GGUF tensor name."""
        mapping = gguf.get_tensor_name_map(self.gguf_arch, config.num_hidden_layers)
        out = {}
        for hf in self.hf_tensors(config):
            name = mapping.get_name(hf, try_suffixes=(".weight", ".bias"))
            if name is None:  # pragma: no cover - a gguf release that lost a mapping
                raise UnsupportedModelError(f"gguf has no GGUF name for {hf}")
            out[hf] = name
        return out

    def text_name(self, name: str) -> str | None:
        """The text model's name for a checkpoint tensor, or None for a tensor to skip."""
        if name.startswith(self.skip_prefixes):
            return None
        for prefix, replacement in self.text_prefixes:
            if name.startswith(prefix):
                return replacement + name[len(prefix) :]
        return name


def write_shape(writer: gguf.GGUFWriter, c: Any) -> None:
    """The keys every family writes first, in this order (the GGUF's bytes depend on it)."""
    writer.add_block_count(c.num_hidden_layers)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)


def unchanged(gguf_name: str, data: np.ndarray, config: Any) -> np.ndarray:
    return data


def layer_tensors(n_layers: int, names: tuple[str, ...]) -> list[str]:
    return [f"model.layers.{i}.{t}" for i in range(n_layers) for t in names]
