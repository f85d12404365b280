"""converter.to_hf without a model: the end-of-turn token comes from the file being converted."""

from __future__ import annotations

import pytest

from converter.errors import CheckpointFormatError
from converter.to_hf import end_of_turn_id
from converter.tokenizer import Vocab
from tests.templates import CHATML_TEMPLATE

GEMMA = {"general.architecture": "gemma3"}
TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "x", "<end_of_turn>", "<|im_end|>"]


def _vocab(tokens: list[str], template: str | None = None) -> Vocab:
    n = len(tokens)
    return Vocab(
        tokens=tokens, scores=[0.0] * n, types=[1] * n, bos_id=2, eos_id=1, unk_id=3, pad_id=0,
        add_bos=True, add_eos=False, add_sep=False, chat_template=template,
    )  # fmt: skip


def test_end_of_turn_is_the_files_own() -> None:
    assert end_of_turn_id(GEMMA, _vocab(TOKENS)) == 5  # no template: Gemma's <end_of_turn>
    assert end_of_turn_id(GEMMA, _vocab(TOKENS, CHATML_TEMPLATE)) == 6  # its template's
    assert end_of_turn_id({**GEMMA, "tokenizer.ggml.eot_token_id": 4}, _vocab(TOKENS)) == 4


def test_a_file_without_an_end_of_turn_token_is_a_clear_error() -> None:
    with pytest.raises(CheckpointFormatError, match="no end-of-turn token.*'<end_of_turn>'"):
        end_of_turn_id(GEMMA, _vocab(TOKENS[:5]))
    with pytest.raises(CheckpointFormatError, match="eot_token_id is 99, not a token"):
        end_of_turn_id({**GEMMA, "tokenizer.ggml.eot_token_id": 99}, _vocab(TOKENS))
