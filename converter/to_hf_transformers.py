"""Qwen2 / Llama GGUF -> HF checkpoint through transformers' own GGUF loader (``gguf_file=``).

transformers dequantizes with gguf's numpy kernels, undoes llama.cpp's q/k permutation, and
builds tokenizer.json from the GGUF's tokens and merges. Where it falls short we finish the job
(``finish_tokenizer``, and Llama 3's RoPE scaling passed in from its ``rope_freqs`` tensor),
each from the GGUF's own data:
- a pre-tokenizer it does not know (e.g. SmolLM2's ``smollm``) becomes plain byte-level
  splitting, which tokenizes digits differently from llama.cpp: rewritten from
  ``tokenizer.ggml.pre``;
- the ``[PADn]`` rows that pad a vocabulary to the embedding size become normal tokens: dropped
  (the converter pads them again, UNUSED, as the original had them);
- ``add_bos_token`` / ``add_eos_token`` are not written: copied into tokenizer_config.json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gguf

from converter.bpe_vocab import PRE_TOKENIZERS, pre_tokenizer_json, pre_tokenizer_steps
from converter.errors import MissingExtraError
from converter.staging import staged

log = logging.getLogger(__name__)


def transformers_to_hf(
    gguf_path: Path,
    fields: dict[str, Any],
    out_dir: Path,
    *,
    rope_parameters: dict[str, Any] | None = None,
) -> Path:
    """``rope_parameters``: RoPE scaling the loader cannot read from the GGUF (Llama 3's)."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError as exc:
        raise MissingExtraError("torch and transformers", "train") from exc
    with staged(out_dir) as staging:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        config = None  # read by the loader itself, unless we must amend it
        if rope_parameters is not None:
            config = AutoConfig.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            config.rope_parameters = rope_parameters
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent,
            config=config,
            gguf_file=gguf_path.name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),
        )
        model.save_pretrained(staging)
        del model
        tokenizer.save_pretrained(staging)
        finish_tokenizer(staging, fields)
    return out_dir


def finish_tokenizer(directory: Path, fields: dict[str, Any]) -> None:
    path = directory / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    fix_pre_tokenizer(data, fields.get("tokenizer.ggml.pre"))
    types = fields.get("tokenizer.ggml.token_type") or []
    unused = {f"[PAD{i}]" for i, kind in enumerate(types) if kind == gguf.TokenType.UNUSED}
    vocab = data["model"]["vocab"]
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if t != f"[PAD{i}]" or t not in unused}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for key in ("add_bos_token", "add_eos_token"):
        value = fields.get(f"tokenizer.ggml.{key}")
        if value is not None:
            config[key] = bool(value)
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def fix_pre_tokenizer(data: dict[str, Any], pre: str | None) -> bool:
    """Set tokenizer.json's pre_tokenizer to llama.cpp's ``pre`` if they differ; True if changed.
    A ``pre`` without a known HF form is left as transformers wrote it (warned)."""
    if pre not in PRE_TOKENIZERS:
        log.warning("pre-tokenizer %r is not known here; kept transformers' reading of it", pre)
        return False
    if pre_tokenizer_steps(data.get("pre_tokenizer")) == PRE_TOKENIZERS[pre]:
        return False
    data["pre_tokenizer"] = pre_tokenizer_json(pre)
    return True
