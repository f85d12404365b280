"""GGUF -> Hugging Face checkpoint (bf16 safetensors, config.json, tokenizer files).

Gemma-3 is written here, without torch: quantized tensors are dequantized with gguf's numpy
kernels, the norm weights shifted back (GGUF stores w + 1), the vocabulary rebuilt as a
SentencePiece ModelProto. Qwen2 and Llama go through transformers' own GGUF loader
(``gguf_file=``, dequantizing; needs the [train] extra), which also undoes llama.cpp's q/k row
permutation and builds tokenizer.json; we go beyond it where it falls short: pre-tokenizers it
does not know (SmolLM2's ``smollm``: digits split one by one) are written from
``tokenizer.ggml.pre``, and Llama 3's RoPE scaling, which it drops, is recovered from the
``rope_freqs`` tensor (see converter.families.rope).
The folder appears only when complete (built beside it, then renamed).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from tqdm import tqdm

from converter.errors import CheckpointFormatError, OutputError, UnsupportedModelError
from converter.families import family_for_gguf
from converter.families.decoder import rope_from_gguf
from converter.families.gemma3 import GEMMA3, config_from_gguf, from_gguf
from converter.gguf_reader import GGUFReader
from converter.safetensors_io import write_safetensors
from converter.staging import staged
from converter.tokenizer import Vocab, vocab_from_gguf_fields, write_hf_tokenizer
from edge_runtime.errors import ChatTemplateError
from edge_runtime.prompt import chat_format


def read_fields(reader: gguf.GGUFReader) -> dict[str, Any]:
    return {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}


def gguf_to_hf(gguf_path: str | Path, out_dir: str | Path, *, progress: bool = True) -> Path:
    """Write ``out_dir`` (must not exist yet or be empty) as a bf16 HF checkpoint."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise OutputError(f"{out_dir} already exists and is not empty - choose a new folder")
    if not out_dir.parent.is_dir():
        raise OutputError(f"the parent folder {out_dir.parent} does not exist")
    try:
        reader = GGUFReader(gguf_path)
    except (OSError, ValueError) as exc:
        raise CheckpointFormatError(f"{gguf_path} is not a readable GGUF ({exc})") from exc
    fields = read_fields(reader)
    family = family_for_gguf(fields.get("general.architecture"))
    if family is not GEMMA3:
        from converter.to_hf_transformers import transformers_to_hf

        rope = rope_from_gguf(fields, {t.name: t.data for t in reader.tensors})  # memmapped
        return transformers_to_hf(Path(gguf_path), fields, out_dir, rope_parameters=rope)
    config = config_from_gguf(fields)
    vocab = vocab_from_gguf_fields(fields)
    reverse = {g: h for h, g in GEMMA3.name_map(config).items()}
    with staged(out_dir) as staging:
        tensors = []
        for tensor in tqdm(reader.tensors, desc="dequantize", unit="tensor", disable=not progress):
            if tensor.name not in reverse:
                raise UnsupportedModelError(f"unexpected GGUF tensor {tensor.name}")
            # bit-reproducible on any CPU: gguf's numpy kernels only widen (f16 -> f32 and
            # integers -> f32 are exact) and apply elementwise IEEE multiplies/adds, each
            # correctly rounded; no BLAS, no reduction (likewise the shift and f32_to_bf16)
            values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
            tensors.append((reverse[tensor.name], from_gguf(tensor.name, values)))
        if "output.weight" in {t.name for t in reader.tensors}:
            config = replace(config, tie_word_embeddings=False)
        write_safetensors(staging / "model.safetensors", tensors, dtype="BF16")
        del tensors
        (staging / "config.json").write_text(json.dumps(config.to_hf_dict(), indent=1))
        generation = {
            "bos_token_id": vocab.bos_id,
            "eos_token_id": [vocab.eos_id, end_of_turn_id(fields, vocab)],
            "pad_token_id": vocab.pad_id,
        }
        (staging / "generation_config.json").write_text(json.dumps(generation, indent=1))
        write_hf_tokenizer(vocab, staging)
    return out_dir


def end_of_turn_id(fields: dict[str, Any], vocab: Vocab) -> int:
    """The token that ends the model's turn (generation stops there as at EOS), from the GGUF
    itself: its ``tokenizer.ggml.eot_token_id``, else its chat format's end of turn (its own
    template's, or Gemma's turns without one, as the runtime reads it) in its vocabulary."""
    eot = fields.get(gguf.Keys.Tokenizer.EOT_ID)
    if eot is not None:
        if not isinstance(eot, int) or not 0 <= eot < len(vocab.tokens):
            raise CheckpointFormatError(
                f"{gguf.Keys.Tokenizer.EOT_ID} is {eot!r}, not a token of the vocabulary of "
                f"{len(vocab.tokens)} - the GGUF is damaged: re-export it"
            )
        return eot
    try:
        text = chat_format(
            vocab.chat_template,
            architecture=str(fields.get("general.architecture", "")),
            bos_token=_token(vocab, vocab.bos_id),
            eos_token=_token(vocab, vocab.eos_id),
            add_bos=vocab.add_bos,
        ).end_of_turn
    except ChatTemplateError as exc:
        raise CheckpointFormatError(f"cannot tell the end-of-turn token: {exc}") from exc
    if text not in vocab.tokens:
        raise CheckpointFormatError(
            f"the vocabulary has no end-of-turn token: neither {gguf.Keys.Tokenizer.EOT_ID} "
            f"nor its chat format's {text!r} - add the key to the GGUF, or convert a file "
            "whose vocabulary has it"
        )
    return vocab.tokens.index(text)


def _token(vocab: Vocab, token_id: int | None) -> str:
    return vocab.tokens[token_id] if token_id is not None and token_id < len(vocab.tokens) else ""
