"""Byte-level BPE vocabularies (Qwen2, Llama 3, SmolLM2): ``tokenizer.json`` <-> GGUF ``gpt2``.

Tokens and types follow llama.cpp's reference converter: the vocabulary padded to the config's
``vocab_size`` with ``[PADn]`` (UNUSED), added tokens CONTROL when special (or when they look
special), USER_DEFINED otherwise. Merges, special token ids, ``add_*_token`` and the chat
template are read by gguf-py's ``SpecialVocab``, as the reference does.

llama.cpp splits text before BPE with one of its named pre-tokenizers (``tokenizer.ggml.pre``).
The reference recognises a tokenizer by hashing its output on a test text; here the
``pre_tokenizer`` of tokenizer.json is read structurally (its split regexes, digit splitting and
byte-level steps) and matched against the table below, which also writes it back for GGUF -> HF.
An unknown pre-tokenizer is refused: llama.cpp's default would tokenize differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from converter.checkpoint import read_json
from converter.errors import CheckpointFormatError, UnsupportedModelError
from converter.tokenizer import looks_special

T = gguf.TokenType
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# llama.cpp's name -> the steps of the HF pre_tokenizer: ("split", regex), ("digits", individual),
# ("byte_level", use_regex); other fields (offsets, prefix space off) do not change the ids
PRE_TOKENIZERS: dict[str, tuple[tuple[str, Any], ...]] = {
    "qwen2": (("split", QWEN2_SPLIT), ("byte_level", False)),
    "llama-bpe": (("split", LLAMA3_SPLIT), ("byte_level", False)),
    "smollm": (("digits", True), ("byte_level", True)),
    "gpt-2": (("byte_level", True),),
}


def _step(step: dict[str, Any]) -> tuple[str, Any]:
    kind = step.get("type")
    if kind == "Split" and step.get("behavior") == "Isolated" and not step.get("invert"):
        pattern = step.get("pattern") or {}
        return ("split", pattern.get("Regex", pattern.get("String")))
    if kind == "Digits":
        return ("digits", bool(step.get("individual_digits")))
    if kind == "ByteLevel" and not step.get("add_prefix_space"):
        return ("byte_level", bool(step.get("use_regex", True)))
    return ("unknown", json.dumps(step, sort_keys=True)[:120])


def pre_tokenizer_steps(pre: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if not pre:
        return ()
    parts = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
    return tuple(_step(step) for step in parts or [])


def pre_tokenizer_name(pre: dict[str, Any] | None, source: Path) -> str:
    steps = pre_tokenizer_steps(pre)
    for name, known in PRE_TOKENIZERS.items():
        if steps == known:
            return name
    raise UnsupportedModelError(
        f"{source}: the pre-tokenizer {steps!r} is not one llama.cpp is known to run the same "
        f"way; known: {', '.join(PRE_TOKENIZERS)}"
    )


def pre_tokenizer_json(name: str) -> dict[str, Any]:
    """The tokenizer.json ``pre_tokenizer`` for llama.cpp's ``name``."""
    if name not in PRE_TOKENIZERS:
        raise UnsupportedModelError(f"pre-tokenizer {name!r} has no HF equivalent here")
    steps = []
    for kind, value in PRE_TOKENIZERS[name]:
        if kind == "split":
            pattern = {"Regex": value}
            steps.append(
                {"type": "Split", "pattern": pattern, "behavior": "Isolated", "invert": False}
            )
        elif kind == "digits":
            steps.append({"type": "Digits", "individual_digits": value})
        else:
            steps.append(
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": value}
            )  # fmt: skip
    return {"type": "Sequence", "pretokenizers": steps}


@dataclass(frozen=True)
class BpeVocab:
    directory: Path
    tokens: list[str]
    types: list[int]
    pre: str

    def write_to(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.types)
        special = gguf.SpecialVocab(self.directory, load_merges=True, n_vocab=len(self.tokens))
        if not special.merges:
            raise CheckpointFormatError(f"{self.directory}/tokenizer.json has no BPE merges")
        special.add_to_gguf(writer, quiet=True)


def read_bpe_vocab(directory: Path, vocab_size: int) -> BpeVocab:
    path = directory / "tokenizer.json"
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise CheckpointFormatError(f"{path}: not a BPE tokenizer")
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [int(T.UNUSED)] * vocab_size
    for text, token_id in model["vocab"].items():
        if token_id < vocab_size:
            tokens[token_id], types[token_id] = text, int(T.NORMAL)
    for added in data.get("added_tokens") or []:
        token_id, content = added["id"], added["content"]
        if token_id >= vocab_size:
            raise CheckpointFormatError(
                f"{path}: added token {content!r} has id {token_id} beyond vocab_size {vocab_size}"
            )
        special = added.get("special") or looks_special(content)
        tokens[token_id], types[token_id] = content, int(T.CONTROL if special else T.USER_DEFINED)
    pre = pre_tokenizer_name(data.get("pre_tokenizer"), path)
    return BpeVocab(directory, tokens, types, pre)
