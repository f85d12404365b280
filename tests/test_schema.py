from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_runtime.schema import BUCKETS, AnswerSchema
from tests.gbnf import language


@pytest.mark.parametrize("n_options", [2, 4, 5, 26])
def test_grammar_language_is_exactly_the_schema_responses(n_options: int) -> None:
    schema = AnswerSchema.for_options(n_options)
    accepted = language(schema.grammar())
    assert accepted == {text for _, _, text in schema.responses()}
    assert len(accepted) == len(BUCKETS) * n_options


@pytest.mark.parametrize("n_options", [2, 4, 26])
def test_every_string_the_grammar_accepts_parses_strictly(n_options: int) -> None:
    schema = AnswerSchema.for_options(n_options)
    for text in language(schema.grammar()):
        parsed = schema.parse(text)
        assert parsed.strict and parsed.lenient
        assert parsed.letter in schema.letters
        assert parsed.confidence in {float(b) for b in BUCKETS}


@given(
    st.text(
        alphabet=st.sampled_from(list("Confidence: 0.12575\nFinalanswr:ABCDEZ xy")), max_size=40
    )
)
def test_parser_rejects_strictly_what_the_grammar_rejects(text: str) -> None:
    schema = AnswerSchema.for_options(4)
    accepted = language(schema.grammar())
    assert schema.parse(text).strict == (text in accepted)


@pytest.mark.parametrize(
    "text, strict, lenient, letter, confidence",
    [
        ("Confidence: 0.25\nFinal answer: B", True, True, "B", 0.25),
        ("Confidence: 1.0\nFinal answer: D", True, True, "D", 1.0),
        ("Confidence: 0.5\nFinal answer: B\nBecause...", False, True, "B", 0.5),
        ("  Confidence:0.75 \nFinal answer:  C", False, True, "C", 0.75),
        ("Confidence: 0.3\nFinal answer: B", False, False, None, None),  # not a bucket
        ("Confidence: 0.5\nFinal answer: E", False, False, None, None),  # not offered
        ("Final answer: B\nConfidence: 0.5", False, False, None, None),  # wrong order
        ("Confidence: 0.5", False, False, None, None),
        ("", False, False, None, None),
        ("The answer is B", False, False, None, None),
    ],
)
def test_parse_table(
    text: str, strict: bool, lenient: bool, letter: str | None, confidence: float | None
) -> None:
    parsed = AnswerSchema.for_options(4).parse(text)
    assert (parsed.strict, parsed.lenient, parsed.letter, parsed.confidence) == (
        strict,
        lenient,
        letter,
        confidence,
    )


@pytest.mark.parametrize("n", [0, 1, 27])
def test_schema_refuses_impossible_option_counts(n: int) -> None:
    with pytest.raises(ValueError):
        AnswerSchema.for_options(n)
