"""The three decoding modes on the real model through real llama.cpp."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from edge_runtime.config import Mode
from edge_runtime.mcq import stratified
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.schema import BUCKETS, AnswerSchema
from testkit.reference_walk import reference_walk


def _assert_schema_valid(record_output: str, n_options: int) -> None:
    parsed = AnswerSchema.for_options(n_options).parse(record_output)
    assert parsed.strict, record_output


@pytest.mark.slow
def test_fast_mode_is_schema_valid_on_35_questions_from_all_domains(runtime: EdgeRuntime) -> None:
    """Five per domain; `make latency` records fast mode's schema validity on 8 eval questions
    per domain (``schema_validity``), the bench runs it on every eval question."""
    questions = stratified(5)
    assert len({q.domain for q in questions}) == 7 and len(questions) == 35
    for question in questions:
        record = runtime.answer(question, mode=Mode.FAST)
        _assert_schema_valid(record.output, len(question.choices))
        assert record.local_answer in question.letters
        assert str(record.confidence) in {str(float(b)) for b in BUCKETS}
        assert math.isclose(sum(record.bucket_probs.values()), 1.0, abs_tol=1e-9)
        assert math.isclose(sum(record.letter_probs.values()), 1.0, abs_tol=1e-9)
        assert set(record.letter_probs) == set(question.letters)
        # greedy picks the argmax letter given the emitted bucket
        assert record.local_answer == max(record.letter_probs, key=record.letter_probs.get)


@pytest.mark.slow
def test_grammar_mode_is_schema_valid_on_14_questions(runtime: EdgeRuntime) -> None:
    """Two per domain (grammar sampling is ~6x fast mode's time); `make latency` records the
    grammar's schema validity on 8 eval questions per domain (``schema_validity``)."""
    for question in stratified(2):
        record = runtime.answer(question, mode=Mode.GRAMMAR)
        _assert_schema_valid(record.output, len(question.choices))
        assert record.local_answer in question.letters


@pytest.mark.slow
def test_free_mode_reports_what_the_model_wrote(runtime: EdgeRuntime) -> None:
    for question in stratified(1):
        record = runtime.answer(question, mode=Mode.FREE)
        parsed = AnswerSchema.for_options(len(question.choices)).parse(record.output)
        assert record.output, "free mode generated nothing"
        assert record.local_answer == parsed.letter
        if parsed.letter is None:
            assert record.error_kind == "unparseable_output"
            assert record.route.value == "cloud"  # a missing confidence escalates
        assert record.bucket_probs is None and record.letter_probs is None


@pytest.mark.slow
def test_fast_equals_a_token_by_token_greedy_walk(runtime: EdgeRuntime) -> None:
    """Without a guess (a decode per choice point) and from an empty cache; the guess is
    walked on all three families in test_families."""
    uncached = EdgeRuntime(
        runtime.engine, runtime.model, replace(runtime.config, cache_prefix=False, guess="none")
    )
    for question in stratified(2):
        record = uncached.answer(question, mode=Mode.FAST)
        schema = AnswerSchema.for_options(len(question.choices))
        walk = reference_walk(runtime.engine, runtime.prompt_tokens(question), schema)
        assert record.output == walk.text, question.id
        p_one = walk.p_bucket("1.0")
        assert p_one is not None and math.isclose(record.bucket_probs["1.0"], p_one, rel_tol=1e-6)
        assert walk.letters.keys() == record.letter_probs.keys()
        assert all(
            math.isclose(record.letter_probs[k], v, rel_tol=1e-6) for k, v in walk.letters.items()
        )
