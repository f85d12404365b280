"""The SentencePiece vocabulary between a Hugging Face folder and GGUF ``tokenizer.*`` keys.

Reading follows llama.cpp's reference converter: ``tokenizer.model`` first (pieces, scores and
types; then ``added_tokens.json`` and ``tokenizer_config.json``'s ``added_tokens_decoder``: special
tokens become CONTROL, the others USER_DEFINED with SentencePiece's U+2581 turned back into
spaces), ``tokenizer.json`` otherwise. Writing the other way rebuilds a real ``tokenizer.model``
(a SentencePiece ModelProto) from the GGUF's tokens, scores and types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from converter.errors import CheckpointFormatError, CheckpointNotFoundError, MissingExtraError

SPACE = "\u2581"
T = gguf.TokenType  # NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    scores: list[float]
    types: list[int]
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    pad_id: int | None
    add_bos: bool
    add_eos: bool
    add_sep: bool
    chat_template: str | None = None

    def write_to(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model("llama")  # SentencePiece
        writer.add_tokenizer_pre("default")
        writer.add_token_list(self.tokens)
        writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        for value, add in (
            (self.bos_id, writer.add_bos_token_id),
            (self.eos_id, writer.add_eos_token_id),
            (self.unk_id, writer.add_unk_token_id),
            (self.pad_id, writer.add_pad_token_id),
        ):
            if value is not None:
                add(value)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_sep_token(self.add_sep)
        writer.add_add_eos_token(self.add_eos)
        # llama.cpp defaults SPM vocabularies to a space prefix, which would shift every prompt
        writer.add_add_space_prefix(False)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CheckpointFormatError(f"{path} is not valid JSON ({exc})") from exc
    return data if isinstance(data, dict) else {}


def read_vocab(directory: Path, vocab_size: int, hf_config: dict[str, Any]) -> Vocab:
    """The vocabulary of an HF folder, padded to ``vocab_size`` like the reference converter."""
    tokenizer_config = _json(directory / "tokenizer_config.json")
    if (directory / "tokenizer.model").is_file():
        tokens, scores, types, unk = _from_sentencepiece(directory / "tokenizer.model", vocab_size)
    elif (directory / "tokenizer.json").is_file():
        tokens, scores, types, unk = _from_tokenizer_json(directory / "tokenizer.json", vocab_size)
    else:
        raise CheckpointNotFoundError(f"{directory} has neither tokenizer.model nor tokenizer.json")
    for text, token_id in _json(directory / "added_tokens.json").items():
        if token_id < vocab_size:
            tokens[token_id], scores[token_id], types[token_id] = text, -1000.0, T.USER_DEFINED
    for key, data in (tokenizer_config.get("added_tokens_decoder") or {}).items():
        token_id, content = int(key), data["content"]
        if token_id >= vocab_size:
            continue
        if data.get("special") or looks_special(content):
            tokens[token_id], types[token_id] = content, T.CONTROL
        else:
            tokens[token_id], types[token_id] = content.replace(SPACE, " "), T.USER_DEFINED
    ids = {text: i for i, text in enumerate(tokens)}

    def special(name: str) -> int | None:
        value = tokenizer_config.get(name)
        content = value.get("content") if isinstance(value, dict) else value
        if isinstance(content, str) and content in ids:
            return ids[content]
        config_id = hf_config.get(f"{name}_id")
        return config_id if isinstance(config_id, int) else None

    template = tokenizer_config.get("chat_template")
    jinja = directory / "chat_template.jinja"
    if template is None and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    return Vocab(
        tokens=tokens,
        scores=scores,
        types=[int(t) for t in types],
        bos_id=special("bos_token"),
        eos_id=special("eos_token"),
        unk_id=special("unk_token") if special("unk_token") is not None else unk,
        pad_id=special("pad_token"),
        add_bos=bool(tokenizer_config.get("add_bos_token", True)),
        add_eos=bool(tokenizer_config.get("add_eos_token", False)),
        add_sep=bool(tokenizer_config.get("add_sep_token", False)),
        chat_template=template if isinstance(template, str) else None,
    )


def looks_special(token: str) -> bool:
    """Added tokens some checkpoints forget to mark special (the reference converter's list)."""
    return (
        token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<\uff5c") and token.endswith("\uff5c>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


def _padded(vocab_size: int) -> tuple[list[str], list[float], list[int]]:
    return (
        [f"[PAD{i}]" for i in range(vocab_size)],
        [-10000.0] * vocab_size,
        [T.UNUSED] * vocab_size,
    )


def _from_sentencepiece(
    path: Path, vocab_size: int
) -> tuple[list[str], list[float], list[int], int | None]:
    try:
        from sentencepiece import SentencePieceProcessor
    except ImportError as exc:
        raise MissingExtraError("sentencepiece", "convert") from exc
    processor = SentencePieceProcessor()
    try:
        processor.LoadFromFile(str(path))
    except (OSError, RuntimeError) as exc:
        raise CheckpointFormatError(f"{path} is not a SentencePiece model ({exc})") from exc
    tokens, scores, types = _padded(vocab_size)
    unk = None
    for token_id in range(min(processor.vocab_size(), vocab_size)):
        kind = T.NORMAL
        if processor.IsUnknown(token_id):
            kind, unk = T.UNKNOWN, token_id
        elif processor.IsControl(token_id):
            kind = T.CONTROL
        elif processor.IsUnused(token_id):
            kind = T.UNUSED
        elif processor.IsByte(token_id):
            kind = T.BYTE
        tokens[token_id] = processor.IdToPiece(token_id)
        scores[token_id] = processor.GetScore(token_id)
        types[token_id] = kind
    return tokens, scores, types, unk


def _from_tokenizer_json(
    path: Path, vocab_size: int
) -> tuple[list[str], list[float], list[int], int | None]:
    """A tokenizers BPE vocabulary as SentencePiece fields: merge priority as -id scores."""
    data = _json(path)
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise CheckpointFormatError(
            f"{path}: only a BPE tokenizer.json can stand in for tokenizer.model"
        )
    tokens, scores, types = _padded(vocab_size)
    for text, token_id in model["vocab"].items():
        if token_id < vocab_size:
            is_byte = len(text) == 6 and text.startswith("<0x") and text.endswith(">")
            tokens[token_id] = text
            scores[token_id] = 0.0 if is_byte else -float(token_id)
            types[token_id] = T.BYTE if is_byte else T.NORMAL
    unk = model["vocab"].get(model.get("unk_token") or "<unk>")
    for added in data.get("added_tokens") or []:
        if added["id"] < vocab_size:
            tokens[added["id"]] = added["content"]
            scores[added["id"]] = -1000.0
            types[added["id"]] = T.CONTROL if added.get("special") else T.USER_DEFINED
    return tokens, scores, types, unk


# -- GGUF -> Hugging Face ------------------------------------------------------------------------
def vocab_from_gguf_fields(fields: dict[str, Any]) -> Vocab:
    """From ``tokenizer.*`` values already decoded to Python (see converter.gguf_read)."""
    if fields.get("tokenizer.ggml.model") != "llama":
        raise CheckpointFormatError("only SentencePiece ('llama') GGUF vocabularies convert back")
    return Vocab(
        tokens=list(fields["tokenizer.ggml.tokens"]),
        scores=[float(s) for s in fields["tokenizer.ggml.scores"]],
        types=[int(t) for t in fields["tokenizer.ggml.token_type"]],
        bos_id=fields.get("tokenizer.ggml.bos_token_id"),
        eos_id=fields.get("tokenizer.ggml.eos_token_id"),
        unk_id=fields.get("tokenizer.ggml.unknown_token_id"),
        pad_id=fields.get("tokenizer.ggml.padding_token_id"),
        add_bos=bool(fields.get("tokenizer.ggml.add_bos_token", True)),
        add_eos=bool(fields.get("tokenizer.ggml.add_eos_token", False)),
        add_sep=bool(fields.get("tokenizer.ggml.add_sep_token", False)),
        chat_template=fields.get("tokenizer.chat_template"),
    )


def write_hf_tokenizer(vocab: Vocab, directory: Path) -> None:
    """tokenizer.model (SentencePiece BPE, byte fallback, digits split, no dummy prefix) and
    tokenizer_config.json whose added_tokens_decoder restores CONTROL / USER_DEFINED types."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as exc:
        raise MissingExtraError("sentencepiece and protobuf", "convert") from exc
    pb: Any = sentencepiece_model_pb2  # generated protobuf classes: no stubs
    proto = pb.ModelProto()
    decoder: dict[str, dict[str, Any]] = {}
    for token_id, (text, score, kind) in enumerate(
        zip(vocab.tokens, vocab.scores, vocab.types, strict=True)
    ):
        piece = proto.pieces.add()
        piece.score = score
        if token_id == vocab.unk_id:
            piece.piece, piece.type = text, pb.ModelProto.SentencePiece.UNKNOWN
        elif kind == T.USER_DEFINED:
            piece.piece, piece.type = (
                text.replace(" ", SPACE),
                pb.ModelProto.SentencePiece.USER_DEFINED,
            )
        else:
            piece.piece, piece.type = text, int(kind)
        if kind in (T.CONTROL, T.USER_DEFINED) or token_id == vocab.unk_id:
            special = kind == T.CONTROL or token_id == vocab.unk_id
            decoder[str(token_id)] = {
                "content": piece.piece,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": special,
            }
    _set_bpe_spec(proto, pb, vocab)
    (directory / "tokenizer.model").write_bytes(proto.SerializeToString())

    def content(token_id: int | None) -> str | None:
        return None if token_id is None else vocab.tokens[token_id]

    config: dict[str, Any] = {
        "tokenizer_class": "GemmaTokenizer",
        "add_bos_token": vocab.add_bos,
        "add_eos_token": vocab.add_eos,
        "bos_token": content(vocab.bos_id),
        "eos_token": content(vocab.eos_id),
        "unk_token": content(vocab.unk_id),
        "pad_token": content(vocab.pad_id),
        "model_max_length": 1_000_000,
        "spaces_between_special_tokens": False,
        "added_tokens_decoder": decoder,
    }
    if vocab.chat_template:
        config["chat_template"] = vocab.chat_template
    (directory / "tokenizer_config.json").write_text(
        json.dumps(config, indent=1, ensure_ascii=False)
    )
    specials = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=1))


def _set_bpe_spec(proto: Any, pb: Any, vocab: Vocab) -> None:
    """The trainer and normalizer settings of Gemma's SentencePiece BPE model."""
    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.BPE
    spec.vocab_size = len(vocab.tokens)
    spec.byte_fallback = True
    spec.split_digits = True
    spec.allow_whitespace_only_pieces = True
    spec.split_by_whitespace = False
    spec.treat_whitespace_as_suffix = False
    for name in ("unk", "bos", "eos", "pad"):
        value = getattr(vocab, f"{name}_id")
        setattr(spec, f"{name}_id", -1 if value is None else value)
    norm = proto.normalizer_spec
    norm.name, norm.add_dummy_prefix = "identity", False
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
