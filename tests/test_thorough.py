"""Thorough passes: fixed option orders, the first the plain fast pass bit for bit, answers and
distributions mapped back to the original options, the same numbers every time."""

from __future__ import annotations

import json

import pytest

from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.errors import ConfigError
from edge_runtime.mcq import stratified
from edge_runtime.question import make_question
from edge_runtime.record import SCHEMA_VERSION
from edge_runtime.routing.rule import Signal
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.thorough import option_orders, reordered, thorough_pass


def test_orders_are_fixed_rotations_spread_over_the_options() -> None:
    assert option_orders(4, 1) == [(0, 1, 2, 3)]
    assert option_orders(4, 2) == [(0, 1, 2, 3), (2, 3, 0, 1)]
    assert option_orders(4, 4) == [(0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2)]
    assert option_orders(2, 4) == [(0, 1), (1, 0)]  # a two-option question has one other order
    assert option_orders(5, 3) == [(0, 1, 2, 3, 4), (1, 2, 3, 4, 0), (3, 4, 0, 1, 2)]
    with pytest.raises(ValueError):
        option_orders(4, 5)


def test_the_gold_letter_follows_its_option() -> None:
    question = make_question("Pick", ["w", "x", "y", "z"], answer="B")
    shown = reordered(question, (2, 3, 0, 1))
    assert shown.choices == ("y", "z", "w", "x") and shown.answer == "D"


def test_thorough_passes_map_back_and_repeat_exactly(runtime: EdgeRuntime) -> None:
    question = stratified(1, split="calib", domains=("science",))[0]
    plain = runtime.run_edge(question, mode=Mode.FAST)
    result = thorough_pass(runtime, question, 3)
    assert result.first == plain and result.first.letter_probs == plain.letter_probs
    assert len(result.passes) == 3 and result.orders[0] == tuple(range(len(question.choices)))
    letters = question.letters
    for order, shown, mapped, answer in zip(
        result.orders, result.passes, result.option_probs, result.answers, strict=True
    ):
        assert shown.letter_probs is not None and shown.letter is not None
        for i, letter in enumerate(letters):  # the option shown under letter i is order[i]
            assert mapped[letters[order[i]]] == shown.letter_probs[letter]
        assert answer == letters[order[letters.index(shown.letter)]]
        assert sum(mapped.values()) == pytest.approx(1.0)
    consensus = result.consensus
    assert sum(consensus.values()) == pytest.approx(1.0)
    assert result.consensus_letter == max(letters, key=lambda x: consensus[x])
    assert 0.0 < result.agreement <= 1.0 and 0.0 <= result.first_min <= max(
        result.option_probs[0].values()
    )
    runtime.run_edge(stratified(1, split="calib", domains=("law",))[0], mode=Mode.FAST)
    again = thorough_pass(runtime, question, 3)  # another question in between: the same numbers
    assert again.option_probs == result.option_probs and again.answers == result.answers


def test_a_two_option_question_gets_one_other_order(runtime: EdgeRuntime) -> None:
    question = make_question("Which gas do plants absorb?", ["Oxygen", "Carbon dioxide"])
    result = thorough_pass(runtime, question, 4)
    assert result.orders == ((0, 1), (1, 0)) and len(result.passes) == 2


def test_thorough_mode_answers_the_consensus_and_routes_on_its_probability(
    runtime: EdgeRuntime,
) -> None:
    question = stratified(1, split="calib", domains=("finance",))[0]
    passes = thorough_pass(runtime, question, 4)
    record = runtime.answer(question, orders=4)
    data = json.loads(record.to_json())
    assert data["schema_version"] == SCHEMA_VERSION == 5
    assert data["orders"] == 4 and data["order_answers"] == list(passes.answers)
    assert data["answer"] == data["local_answer"] == passes.consensus_letter
    assert data["letter_probs"] == passes.consensus
    # no profile (it ranks one pass): the consensus probability at the card's tau
    assert (data["signal"], data["profile"], data["tau"]) == ("letter", None, 0.5)
    assert data["score"] == passes.consensus[passes.consensus_letter]
    assert data["p_correct"] is None and data["bucket_probs"] == passes.first.bucket_probs
    assert data["route"] == ("local" if data["score"] >= 0.5 else "cloud")
    one = runtime.answer(question)  # one pass: the profile decides, no orders in the record
    assert (one.orders, one.order_answers, one.local_answer) == (1, None, passes.answers[0])
    assert one.profile is not None and runtime.answer(question, orders=1).orders == 1
    bucket = runtime.answer(question, orders=2, signal=Signal.BUCKET, tau=0.25)
    assert (bucket.signal, bucket.score, bucket.tau) == ("bucket", passes.first.confidence, 0.25)


def test_thorough_mode_refuses_what_it_cannot_mean(runtime: EdgeRuntime) -> None:
    with pytest.raises(ConfigError, match="1 to 4"):
        RuntimeConfig(orders=5)
    with pytest.raises(ConfigError, match="--mode fast"):
        RuntimeConfig(orders=2, mode=Mode.GRAMMAR)
    with pytest.raises(ConfigError, match="consensus"):
        RuntimeConfig(orders=2, signal=Signal.CALIBRATED)
    with pytest.raises(ConfigError, match="consensus"):
        runtime.answer("2 + 2 = ?", ["3", "4"], orders=2, signal=Signal.CALIBRATED)
    with pytest.raises(ConfigError, match="--mode fast"):
        runtime.answer("2 + 2 = ?", ["3", "4"], orders=2, mode=Mode.GRAMMAR)
    assert RuntimeConfig.from_env({"FOGGEN_ORDERS": "3"}).orders == 3
