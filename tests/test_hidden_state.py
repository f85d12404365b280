"""The hidden state a fast pass reads is the one llama.cpp's LM head turned into the letter's
logits: those logits equal the hidden state times the output matrix (dequantized with gguf-py)
within the error of llama.cpp quantizing the activation to 8 bits for its dot products; and the
read leaves the cache and the bucket as they were."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.config import Mode
from edge_runtime.decoding import EdgeResult
from edge_runtime.mcq import stratified
from edge_runtime.runtime import EdgeRuntime
from tests.lm_head import (
    BLOCK,
    activation_error_bound,
    output_rows,
    rms,
    typical_error,
)


def letter_read(runtime: EdgeRuntime) -> tuple[list[int], np.ndarray, np.ndarray, EdgeResult]:
    """A real question's fast pass with the hidden read, and the same read again: the tokens
    before the letter, the logits that choose it and the hidden state there."""
    question = stratified(1, split="calib")[0]
    result = runtime.run_edge(question, mode=Mode.FAST, hidden=True)
    assert result.hidden is not None and result.hidden.shape == (runtime.engine.n_embd,)
    assert runtime.engine.detokenize(result.response_tokens[-1:]).strip() == result.letter
    tokens = runtime.prompt_tokens(question) + list(result.response_tokens[:-1])
    logits, hidden = runtime.engine.logits_and_hidden_after(tokens)
    return tokens, logits, hidden, result


@pytest.mark.parametrize("fixture", ["runtime", "smollm2_runtime"])
def test_hidden_state_is_what_the_lm_head_reads(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    runtime: EdgeRuntime = request.getfixturevalue(fixture)
    tokens, logits, hidden, result = letter_read(runtime)
    assert hidden.shape[0] % BLOCK == 0 or hidden.shape[0] % 32 == 0
    if hidden.shape[0] % BLOCK:  # pad to whole 256-blocks (zeros change neither side)
        hidden = np.pad(hidden, (0, BLOCK - hidden.shape[0] % BLOCK))
    rng = np.random.default_rng(0)
    rows = np.unique(np.concatenate([np.argsort(logits)[-64:], rng.choice(len(logits), 512)]))
    weights = output_rows(runtime, rows)
    weights = np.pad(weights, ((0, 0), (0, hidden.shape[0] - weights.shape[1])))
    bound = activation_error_bound(weights, hidden)
    error = np.abs(weights @ hidden.astype(np.float64) - logits[rows])
    assert np.all(error <= bound), float((error / bound).max())
    noise = typical_error(weights, hidden)
    assert rms(error) <= 2.0 * noise, (rms(error), noise)
    # the state one token earlier does not give these logits
    _, earlier = runtime.engine.logits_and_hidden_after(tokens[:-1])
    earlier = np.pad(earlier, (0, hidden.shape[0] - len(earlier)))
    wrong = np.abs(weights @ earlier.astype(np.float64) - logits[rows])
    assert rms(wrong) > 10.0 * noise and np.mean(wrong > bound) > 0.1
    # and the pass's own read is that state (the same tokens; cache reuse may move it a little)
    assert result.hidden is not None
    own = np.pad(result.hidden, (0, hidden.shape[0] - len(result.hidden)))
    cosine = own @ hidden / (np.linalg.norm(own) * np.linalg.norm(hidden))
    assert cosine > 0.99


@pytest.mark.slow
def test_the_read_changes_no_number_of_the_pass(runtime: EdgeRuntime) -> None:
    """The state is copied as llama.cpp's graph runs (no decode of its own): a pass with the
    read is the pass without it, bit for bit, before and after."""
    questions = stratified(1, split="calib")
    plain = [runtime.run_edge(q, mode=Mode.FAST, hidden=False) for q in questions]
    read = [runtime.run_edge(q, mode=Mode.FAST, hidden=True) for q in questions]
    again = [runtime.run_edge(q, mode=Mode.FAST, hidden=False) for q in questions]
    for a, b, c in zip(plain, read, again, strict=True):
        assert a.hidden is None and c.hidden is None and b.hidden is not None
        assert np.all(np.isfinite(b.hidden))
        assert a == b == c  # letter, bucket and both distributions, exactly
