"""Both transformers config spellings, the multimodal wrapper, and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from converter.errors import UnsupportedModelError
from converter.families.gemma3 import FULL, SLIDING, parse_config

# google/gemma-3-270m as transformers v4 wrote it
V4: dict[str, Any] = {
    "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": 262144,
    "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18,
    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0, "rope_scaling": None, "sliding_window": 512,
    "sliding_window_pattern": 6, "query_pre_attn_scalar": 256, "attn_logit_softcapping": None,
    "final_logit_softcapping": None, "hidden_activation": "gelu_pytorch_tanh",
    "tie_word_embeddings": True,
}  # fmt: skip
LAYERS = [FULL if (i + 1) % 6 == 0 else SLIDING for i in range(18)]
V5 = {
    **{k: v for k, v in V4.items() if k not in ("rope_local_base_freq", "sliding_window_pattern")},
    "rope_theta": None,
    "rope_scaling": None,
    "layer_types": LAYERS,
    "rope_parameters": {
        FULL: {"rope_type": "default", "rope_theta": 1000000.0},
        SLIDING: {"rope_type": "default", "rope_theta": 10000.0},
    },
}


def test_v4_and_v5_spellings_give_the_same_config() -> None:
    v4, v5 = parse_config(V4), parse_config(V5)
    assert v4 == v5
    assert (v4.rope_theta, v4.rope_local_base_freq, v4.head_dim) == (1e6, 1e4, 256)
    assert v4.layer_types == tuple(LAYERS) and v4.default_swa_pattern


def test_round_trip_through_our_hf_dict() -> None:
    assert parse_config(parse_config(V4).to_hf_dict()) == parse_config(V4)


def test_multimodal_wrapper_yields_the_text_model() -> None:
    wrapped = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": {**V5, "model_type": "gemma3_text"},
        "vision_config": {"x": 1},
    }
    config = parse_config(wrapped)
    assert config.multimodal and config.hidden_size == 640


def test_a_non_default_pattern_is_kept() -> None:
    config = parse_config({**V4, "sliding_window_pattern": 4, "num_hidden_layers": 8})
    assert config.layer_types.count(FULL) == 2 and not config.default_swa_pattern


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "llama"}, "model_type 'llama' is not supported"),
        ({"attn_logit_softcapping": 50.0}, "attn_logit_softcapping"),
        ({"query_pre_attn_scalar": 168}, "query_pre_attn_scalar"),
        ({"hidden_activation": "silu"}, "hidden_activation"),
        ({"use_bidirectional_attention": True}, "bidirectional"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4}}, "RoPE scaling"),
        ({"layer_types": ["full_attention"] * 3}, "layer_types"),
        ({"hidden_size": None}, "no 'hidden_size'"),
    ],
)
def test_refuses_what_llama_cpp_would_run_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedModelError, match=message):
        parse_config({**V4, **change})
