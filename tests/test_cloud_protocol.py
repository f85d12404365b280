"""The wire format: the request for one MCQ, reading letters back, question keys."""

from __future__ import annotations

import pytest

from cloud_client.errors import AnswerParseError
from cloud_client.protocol import (
    chat_request,
    completion_text,
    model_ids,
    parse_letter,
    question_key,
    read_user_message,
    user_message,
)
from edge_runtime.mcq import DOMAINS, SPLITS, load_questions

CHOICES = ["Oxygen", "Carbon dioxide", "Nitrogen", "Helium"]


def test_request_has_explicit_sampling_and_everything_in_one_user_turn() -> None:
    body = chat_request("Which gas do plants absorb?", CHOICES, model="m", max_tokens=32)
    assert body["model"] == "m" and body["max_tokens"] == 32 and body["stream"] is False
    assert body["temperature"] == 0.0 and body["repeat_penalty"] == 1.0
    assert [m["role"] for m in body["messages"]] == ["user"]
    content = body["messages"][0]["content"]
    assert "Which gas do plants absorb?" in content and "B. Carbon dioxide" in content
    assert "Final answer: <LETTER>" in content and "one of A, B, C, D." in content


def test_every_bundled_question_survives_the_round_trip_through_the_prompt() -> None:
    questions = [q for d in DOMAINS for s in SPLITS for q in load_questions(d, s)]
    assert len(questions) > 6000
    for q in questions:
        assert read_user_message(user_message(q.text, q.choices)) == (q.text, q.choices), q.id


@pytest.mark.parametrize(
    "message",
    ["", "hello", user_message("Q?", ["a", "b"]).replace("Options:", "Choices:")],
)
def test_a_message_that_is_not_a_foggen_prompt_reads_as_none(message: str) -> None:
    assert read_user_message(message) is None


def test_question_key_normalises_whitespace_and_unicode_forms_only() -> None:
    key = question_key("2 + 2 = ?", ["3", "4"])
    assert key == question_key("  2 +  2 =\n?", ["3 ", "\u00a04"])  # NBSP is NFKC space
    assert key != question_key("2 + 2 = ?", ["4", "3"])  # option order matters
    assert key != question_key("2 + 3 = ?", ["3", "4"])
    assert len(key) == 64


@pytest.mark.parametrize(
    "reply, letter",
    [
        ("Final answer: B", "B"),
        ("Final answer: B\n", "B"),
        ("Some reasoning.\nFinal answer: C", "C"),
        ("Final answer: A\nWait, no.\nFinal answer: D", "D"),  # the last answer line wins
        ("final answer: b", "B"),  # lower case right after the label
        ("**Final answer:** **C**", "C"),
        ("Final Answer: (A)", "A"),
        ("Final answer is: C.", "C"),
        ("Final answer: B. Carbon dioxide", "B"),
        ("Final answer:\nB", "B"),
        ("Final answer: Carbon dioxide", "B"),  # the option text
        ("Final answer: carbon  dioxide.", "B"),
        ("B", "B"),  # a bare letter
        ("(D)", "D"),
        ("C) Nitrogen", "C"),
        ("Helium", "D"),  # the exact option text
        ("<think>maybe A</think>\nFinal answer: D", "D"),
    ],
)
def test_offered_letters_are_read_in_their_usual_forms(reply: str, letter: str) -> None:
    assert parse_letter(reply, CHOICES) == letter


@pytest.mark.parametrize(
    "reply, named",
    [
        ("Final answer: E", "E"),  # a letter that is not offered is an error, not a guess
        ("Z", "Z"),
        ("", None),
        ("I am not sure.", None),
        ("b", None),  # a bare lower-case letter could be a word
        ("Final answer: a gas", None),
        ("The answer is probably B or C", None),
        ("Final answer: Argon", None),
        ("Final answer:", None),
    ],
)
def test_anything_else_is_a_typed_parse_error(reply: str, named: str | None) -> None:
    with pytest.raises(AnswerParseError) as info:
        parse_letter(reply, CHOICES)
    assert info.value.letter == named and info.value.kind == "parse_error"
    assert info.value.permanent and isinstance(info.value, ValueError)


def test_a_letter_beats_an_option_whose_text_is_a_letter() -> None:
    assert parse_letter("Final answer: B", ["B", "A"]) == "B"
    assert parse_letter("Final answer: 4", ["3", "4"]) == "B"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"choices": []},
        {"choices": [{"message": {}}]},
        {"choices": [{"message": {"content": None}}]},
        {"choices": "B"},
        ["not", "an", "object"],
    ],
)
def test_completion_text_names_what_is_missing(payload: object) -> None:
    with pytest.raises(ValueError, match="content"):
        completion_text(payload)


def test_completion_text_and_model_ids_read_the_openai_shapes() -> None:
    reply = {"choices": [{"message": {"role": "assistant", "content": "Final answer: A"}}]}
    assert completion_text(reply) == "Final answer: A"
    assert model_ids({"data": [{"id": "a"}, {"id": 3}, {"id": "b"}]}) == ["a", "b"]
    with pytest.raises(ValueError, match=r"data\[\]\.id"):
        model_ids({"models": []})
