from __future__ import annotations

import json

import pytest

from edge_runtime.errors import InvalidQuestionError
from edge_runtime.question import make_question, question_from_json


@pytest.mark.parametrize(
    "text, choices, message",
    [
        ("", ["a", "b"], "empty"),
        ("   ", ["a", "b"], "empty"),
        (None, ["a", "b"], "empty"),
        ("Q?", ["only one"], "2 to 26 options, got 1"),
        ("Q?", [], "2 to 26 options, got 0"),
        ("Q?", [str(i) for i in range(27)], "2 to 26 options, got 27"),
        ("Q?", ["a", "a"], "same"),
        ("Q?", ["a", " a "], "same"),
        ("Q?", ["a", ""], "option B is empty"),
        ("Q?", "ab", "list of strings"),
        ("Q?", ["a", 3], "list of strings"),
        ("Q\udcff?", ["a", "b"], "UTF-8"),
    ],
)
def test_malformed_questions_are_refused_with_a_reason(
    text: object, choices: object, message: str
) -> None:
    with pytest.raises(InvalidQuestionError, match=message):
        make_question(text, choices)


def test_a_valid_question_keeps_its_fields() -> None:
    q = make_question(" Q? ", [" a", "b "], id="x1", domain="math", answer="B")
    assert (q.text, q.choices, q.id, q.domain, q.answer, q.letters) == (
        "Q?",
        ("a", "b"),
        "x1",
        "math",
        "B",
        ("A", "B"),
    )


@pytest.mark.parametrize(
    "line, message",
    [
        (b"\xff\xfe not utf-8", "UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"question": "Q?"}).encode(), "'question' and 'choices'"),
        (json.dumps({"question": "Q?", "choices": ["a", "b"], "answer": "C"}).encode(), "answer"),
        (json.dumps({"question": "Q?", "choices": ["a", "b"], "id": 7}).encode(), "id"),
    ],
)
def test_bad_json_lines_are_refused(line: bytes, message: str) -> None:
    with pytest.raises(InvalidQuestionError, match=message):
        question_from_json(line)
