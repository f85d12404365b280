from __future__ import annotations

import pytest

from edge_runtime.mcq import DOMAINS, load_questions
from edge_runtime.prompt import GEMMA_TURNS, SYSTEM_PROMPT, render_prompt, user_message
from edge_runtime.question import make_question
from edge_runtime.runtime import EdgeRuntime

CARD_SYSTEM_PROMPT = """You are a self-aware multiple-choice assistant.

Rules:
- First, assess your confidence in solving this question.
- Then give your answer.
- Output format:
  Confidence: <0.0|0.25|0.5|0.75|1.0>
  Final answer: <OPTION_LETTER>"""


def test_system_prompt_is_the_cards_verbatim() -> None:
    assert SYSTEM_PROMPT == CARD_SYSTEM_PROMPT


def test_gemma_turn_format_with_system_text_in_the_user_turn() -> None:
    q = make_question("2 + 2 = ?", ["3", "4"])
    assert render_prompt(q, chat=GEMMA_TURNS) == (
        "<start_of_turn>user\n" + CARD_SYSTEM_PROMPT + "\n\n2 + 2 = ?\nA. 3\nB. 4"
        "<end_of_turn>\n<start_of_turn>model\n"
    )
    assert user_message(q) == "2 + 2 = ?\nA. 3\nB. 4"


def test_prompt_tokens_have_exactly_one_bos_and_special_turn_tokens(runtime: EdgeRuntime) -> None:
    engine = runtime.engine
    tokens = runtime.prompt_tokens(make_question("2 + 2 = ?", ["3", "4"]))
    assert tokens[0] == engine.bos and tokens.count(engine.bos) == 1
    start, end = engine.tokenize("<start_of_turn>"), engine.tokenize("<end_of_turn>")
    assert len(start) == len(end) == 1, "turn markers must be single special tokens"
    assert tokens.count(start[0]) == 2 and tokens.count(end[0]) == 1
    assert len([engine.bos, *engine.tokenize(GEMMA_TURNS.prefix)]) == 80  # the shared prefix


@pytest.mark.parametrize("domain", DOMAINS)
def test_split_prompt_tokenizes_like_the_whole_text(runtime: EdgeRuntime, domain: str) -> None:
    """Prefix + suffix (what the cache evaluates) equals tokenizing the whole prompt at once."""
    engine = runtime.engine
    for question in load_questions(domain, "eval"):
        whole = [engine.bos, *engine.tokenize(render_prompt(question, chat=runtime.chat_format))]
        assert runtime.prompt_tokens(question) == whole, question.id
