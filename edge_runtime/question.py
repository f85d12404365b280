"""A multiple-choice question, validated once at the boundary."""

from __future__ import annotations

import json
from dataclasses import dataclass

from edge_runtime.errors import InvalidQuestionError
from edge_runtime.schema import LETTERS, MAX_OPTIONS, MIN_OPTIONS

MAX_QUESTION_CHARS = 32_000
MAX_OPTION_CHARS = 4_000


@dataclass(frozen=True)
class Question:
    text: str
    choices: tuple[str, ...]
    id: str | None = None
    domain: str | None = None
    answer: str | None = None  # the gold letter, when the data has one (benchmarks)

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(LETTERS[: len(self.choices)])


def make_question(
    text: object,
    choices: object,
    *,
    id: object = None,
    domain: object = None,
    answer: object = None,
) -> Question:
    """Validate raw values (from Python, JSON or the CLI) into a :class:`Question`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidQuestionError("the question is empty - give the question text")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"the question has {len(text)} characters, more than {MAX_QUESTION_CHARS}"
        )
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) for c in choices):
        raise InvalidQuestionError("choices must be a list of strings")
    if not MIN_OPTIONS <= len(choices) <= MAX_OPTIONS:
        raise InvalidQuestionError(
            f"a question needs {MIN_OPTIONS} to {MAX_OPTIONS} options, got {len(choices)}"
        )
    for value in (text, *choices):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidQuestionError("the question or an option is not valid UTF-8") from exc
    stripped = [c.strip() for c in choices]
    if any(not c for c in stripped):
        raise InvalidQuestionError(f"option {LETTERS[stripped.index('')]} is empty")
    if any(len(c) > MAX_OPTION_CHARS for c in stripped):
        raise InvalidQuestionError(f"an option is longer than {MAX_OPTION_CHARS} characters")
    if len(set(stripped)) != len(stripped):
        raise InvalidQuestionError("two options are the same - each option must differ")
    for name, value in (("id", id), ("domain", domain)):
        if value is not None and not isinstance(value, str):
            raise InvalidQuestionError(f"{name} must be a string")
    if answer is not None and (
        not isinstance(answer, str) or answer not in LETTERS[: len(choices)]
    ):
        raise InvalidQuestionError(f"answer must be one of the offered letters, got {answer!r}")
    return Question(text.strip(), tuple(stripped), id, domain, answer)  # type: ignore[arg-type]


def question_from_json(line: str | bytes) -> Question:
    """One JSONL line in the bundled data format: {id?, domain?, question, choices, answer?}."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidQuestionError(f"the line is not valid UTF-8 ({exc.reason})") from exc
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidQuestionError(f"the line is not valid JSON: {exc.msg}") from exc
    if not isinstance(obj, dict):
        raise InvalidQuestionError("each line must be a JSON object")
    if "question" not in obj or "choices" not in obj:
        raise InvalidQuestionError("each line needs 'question' and 'choices'")
    return make_question(
        obj["question"],
        obj["choices"],
        id=obj.get("id"),
        domain=obj.get("domain"),
        answer=obj.get("answer"),
    )
