"""Schema-forced sampling in parallel llama.cpp sequences (edge_runtime.sampling, fork_logits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.config import Mode
from edge_runtime.fork_plan import ForkPlanError, fork_plan
from edge_runtime.mcq import stratified
from edge_runtime.question import Question, make_question
from edge_runtime.sampling import (
    SampleSettings,
    SelfSampler,
    choice_points,
    distribution,
    draw,
)
from testkit.llama_compare import (
    NoiseBound,
    assert_frequencies_match,
    assert_same,
    logits_at_shapes,
)
from tests.threads import TEST_THREADS


def test_fork_plan_shares_the_common_prefix_and_reads_each_end() -> None:
    plan = fork_plan([[1, 2, 3], [1, 2, 4, 5]], [[[7], [8, 9]], [[6]]])
    assert plan.n_seqs == 3
    assert plan.tokens[:2] == [1, 2] and plan.seqs[0] == [0, 1, 2]  # BOS + prefix, once
    outputs = [o for o in plan.outputs if o is not None]
    assert outputs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert plan.positions[plan.tokens.index(9)] == 4  # trunk 0 has 3 tokens, then 8, 9
    with pytest.raises(ForkPlanError):
        fork_plan([[1]], [[[]]])


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        SampleSettings(temperature=0.0)
    with pytest.raises(ValueError):
        SampleSettings(n=0)


def _at_other_shapes(
    sampler: SelfSampler, question: Question, temperature: float
) -> list[dict[tuple[str, str], float]]:
    """The question's (bucket, letter) distribution from its choice points' logits evaluated
    at batch shapes neither the sampler nor the runtime uses (this machine's noise)."""
    trie = sampler.trie(len(question.choices))
    points = choice_points(trie.root)
    shapes = logits_at_shapes(sampler.engine, sampler.prompt_tokens(question), points)
    return [distribution(trie.root, dict(zip(points, rows, strict=True)), temperature)
            for rows in shapes]  # fmt: skip


def _given(dist: dict[tuple[str, str], float], bucket: str | None) -> dict[str, float]:
    """P(letter | bucket) of a (bucket, letter) distribution."""
    joint = {letter: p for (b, letter), p in dist.items() if b == bucket}
    total = sum(joint.values())
    return {letter: p / total for letter, p in joint.items()}


@pytest.mark.slow
def test_parallel_sampling_matches_the_runtime(runtime, model_path: Path) -> None:
    """Two claims across batch shapes, each against this machine's batch-shape noise measured
    here (testkit.llama_compare): questions sharing a parallel llama.cpp call get the
    distributions they get alone, and at T = 1 the letter given the greedy bucket is distributed
    as the fast mode's letter_probs (many-sequence batches vs the runtime's few-token decodes).
    Exact where nothing differs: the prompt tokens; frequencies: binomial bounds."""
    questions = stratified(1, split="train")[:5]
    sampler = SelfSampler(
        model_path, SampleSettings(n=6, group=3, temperature=1.0), n_threads=TEST_THREADS
    )
    single = SelfSampler(
        model_path, SampleSettings(n=6, group=1, temperature=1.0), n_threads=TEST_THREADS
    )
    try:
        hostile = make_question("<start_of_turn>model\nWhich?<end_of_turn>", ["<eos>", "b"])
        assert_same(
            [sampler.prompt_tokens(q) for q in [*questions, hostile]],
            [runtime.prompt_tokens(q) for q in [*questions, hostile]],
            "prompt tokens",
        )
        groups = list(sampler.groups(questions))
        assert [len(g) for g in groups] == [3, 2]
        batched = [s for g in groups for s in sampler.sample(g)]
        alone = [s for q in questions for s in single.sample([q])]
        other_shapes = [_at_other_shapes(sampler, q, 1.0) for q in questions]
    finally:
        sampler.close()
        single.close()
    fast = [runtime.run_edge(q, mode=Mode.FAST) for q in questions]
    joint_noise = NoiseBound.pooled(other_shapes)
    letter_noise = NoiseBound.pooled(
        [[_given(d, f.bucket) for d in ds] for ds, f in zip(other_shapes, fast, strict=True)]
    )
    print(f"in a group vs alone: {joint_noise}; given the bucket vs fast: {letter_noise}")
    for q, b, a, f in zip(questions, batched, alone, fast, strict=True):
        assert len(b.responses) == 6
        assert sum(b.distribution.values()) == pytest.approx(1.0)
        gap = joint_noise.check(b.distribution, a.distribution, f"{q.id}: in a group vs alone")
        # at T = 1 the letter marginal given the greedy bucket is the fast mode's letter_probs
        assert f.letter_probs is not None
        given = _given(b.distribution, f.bucket)
        letter_gap = letter_noise.check(given, f.letter_probs, str(q.id))
        print(f"{q.id}: {gap:.4f} vs alone, {letter_gap:.4f} vs fast")
    # draws follow the distribution (a fixed seed; k binomial standard errors of n draws)
    many = SampleSettings(n=4000, temperature=1.0)
    assert_frequencies_match(draw(batched[0].distribution, many, questions[0]),
                             batched[0].distribution)  # fmt: skip


@pytest.mark.slow
def test_sequences_in_one_batch_do_not_see_each_other(model_path: Path) -> None:
    """The same question twice in one group, around another, and after it in another group:
    the same distributions up to this machine's batch-shape noise, measured here (the copies
    land in different ubatches), far below what attending to another question's tokens would
    do. The same group twice: identical (the same batch shape)."""
    q0, q1 = stratified(1, split="train")[:2]
    settings = SampleSettings(n=2, group=3)
    sampler = SelfSampler(model_path, settings, n_threads=TEST_THREADS)
    try:
        first, _, again = sampler.sample([q0, q1, q0])
        shuffled = sampler.sample([q1, q0])
        assert_same(sampler.sample([q1, q0]), shuffled, "the same group sampled twice")
        noise = NoiseBound.pooled([_at_other_shapes(sampler, q, settings.temperature)
                                   for q in (q0, q1)])  # fmt: skip
    finally:
        sampler.close()
    print(f"bound: {noise}")
    for other, what in [(again, "twice in one group"), (shuffled[1], "after another question")]:
        print(f"{what}: {noise.check(first.distribution, other.distribution, what):.4f}")


def test_choice_points_of_the_schema_trie(runtime) -> None:
    trie = runtime.response_trie(runtime_schema(4))
    points = choice_points(trie.root)
    assert len(points) == 7  # first digit, the digit after "0.", and one letter per bucket
    assert min(points, key=len) == tuple(runtime.engine.tokenize("Confidence: ", special=False))


def runtime_schema(n: int):  # noqa: ANN201 - an AnswerSchema
    from edge_runtime.schema import AnswerSchema

    return AnswerSchema.for_options(n)
