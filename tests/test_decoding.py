"""The three decoding modes on the real model through real llama.cpp."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from edge_runtime.config import Mode
from edge_runtime.decoding import restricted_softmax
from edge_runtime.mcq import stratified
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.schema import BUCKETS, AnswerSchema


def _assert_schema_valid(record_output: str, n_options: int) -> None:
    parsed = AnswerSchema.for_options(n_options).parse(record_output)
    assert parsed.strict, record_output


def test_fast_mode_is_schema_valid_on_105_questions_from_all_domains(runtime: EdgeRuntime) -> None:
    questions = stratified(15)
    assert len({q.domain for q in questions}) == 7 and len(questions) == 105
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
def test_grammar_mode_is_schema_valid_on_105_questions(runtime: EdgeRuntime) -> None:
    for question in stratified(15):
        record = runtime.answer(question, mode=Mode.GRAMMAR)
        _assert_schema_valid(record.output, len(question.choices))
        assert record.local_answer in question.letters


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


def _reference_walk(
    runtime: EdgeRuntime, question
) -> tuple[str, dict[str, float], dict[str, float]]:  # noqa: ANN001
    """Token by token over the canonical tokenizations, no trie: at each step the allowed next
    tokens are those of the responses consistent with the walk so far; argmax among them."""
    engine = runtime.engine
    schema = AnswerSchema.for_options(len(question.choices))
    sequences = [(text, engine.tokenize(text, special=False)) for _, _, text in schema.responses()]
    prompt = runtime.prompt_tokens(question)
    engine.reset()
    walked: list[int] = []
    distributions: list[dict[int, float]] = []
    while True:
        alive = [seq for _, seq in sequences if seq[: len(walked)] == walked]
        if len(alive) == 1 and len(alive[0]) == len(walked):
            break
        allowed = list(dict.fromkeys(seq[len(walked)] for seq in alive))
        if len(allowed) > 1:
            probs = restricted_softmax(engine.logits_after(prompt + walked), allowed)
            distributions.append(dict(zip(allowed, probs.tolist(), strict=True)))
            walked.append(allowed[int(probs.argmax())])
        else:
            walked.append(allowed[0])
    text = next(t for t, seq in sequences if seq == walked)
    first_digit = {engine.detokenize([t]): p for t, p in distributions[0].items()}
    letters = {engine.detokenize([t]).strip(): p for t, p in distributions[-1].items()}
    return text, first_digit, letters


def test_fast_equals_a_token_by_token_greedy_walk(runtime: EdgeRuntime) -> None:
    uncached = EdgeRuntime(
        runtime.engine, runtime.model, replace(runtime.config, cache_prefix=False)
    )
    for question in stratified(2):
        record = uncached.answer(question, mode=Mode.FAST)
        text, first_digit, letters = _reference_walk(runtime, question)
        assert record.output == text, question.id
        p_one = record.bucket_probs["1.0"]
        assert math.isclose(p_one, first_digit["1"], rel_tol=1e-6)
        assert all(
            math.isclose(record.letter_probs[k], v, rel_tol=1e-6) for k, v in letters.items()
        )
