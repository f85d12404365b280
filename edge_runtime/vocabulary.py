"""The vocabulary side of a loaded model (tokens, pieces, metadata, the chat template): what
:class:`edge_runtime.engine.LlamaEngine` reads from the model file rather than computes."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from edge_runtime.llama import EngineError, llama


class Vocabulary:
    """Methods over ``self._vocab`` and ``self._model`` (llama.cpp pointers) of an engine."""

    _vocab: Any
    _model: Any

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text`` without BOS; ``special`` parses <start_of_turn> and friends."""
        llama_cpp = llama()
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity, False, special)
        if n < 0:
            raise EngineError(f"tokenizer needed {-n} slots for {len(data)} bytes")
        return list(buffer[:n])

    def piece(self, token: int) -> bytes:
        llama_cpp = llama()
        buffer = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, True)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -n, 0, True)
        return buffer.raw[:n]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama().llama_vocab_is_eog(self._vocab, token))

    def metadata(self, key: str) -> str | None:
        """One GGUF metadata value as llama.cpp read it (None when absent)."""
        llama_cpp = llama()
        size = 256
        while True:
            buffer = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buffer, size)
            if n < 0:
                return None
            if n < size:
                return buffer.value.decode("utf-8", errors="replace")
            size = n + 1

    def token_text(self, token: int) -> str:
        """A token's text as the vocabulary spells it (control tokens included), '' if none."""
        if token < 0:
            return ""
        raw = llama().llama_vocab_get_text(self._vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def chat_template(self) -> str | None:
        """The file's own chat template (``tokenizer.chat_template``), None when it has none.
        The prompt is built from it by ``edge_runtime.prompt.chat_format_for_engine``."""
        template = llama().llama_model_chat_template(self._model, None)
        return template.decode("utf-8") if template else None
