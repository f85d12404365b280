"""The graph callback copies llama.cpp's final hidden state while the graph runs: the logits stay
bit-identical to a context without it, each copied row is the state llama.cpp's own hidden read
returns and the one its LM head turned into that row's logits, and a failure inside the
callback surfaces from take() while the graph goes on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest

import edge_runtime.capture as capture
import edge_runtime.engine as engine_module
from edge_runtime.capture import FINAL_STATE, CaptureError, StateCapture
from edge_runtime.engine import EngineSettings, LlamaEngine
from edge_runtime.mcq import stratified
from edge_runtime.runtime import EdgeRuntime
from tests.lm_head import BLOCK, activation_error_bound, output_rows, rms, typical_error
from tests.threads import TEST_THREADS

# SmolLM2's prompt (728 tokens) runs in 3 batches, the embedded Gemma's (166) in one
SETTINGS = EngineSettings(n_ctx=1024, n_threads=TEST_THREADS, n_batch=256)
MANY = 48  # teacher-forced rows: logits_for_all copies n_vocab floats per row (1 MiB for Gemma)
KV_WRITE = "cache_k_l0 (view)"  # layer 0's write into the F16 key cache: a node that is no f32


@dataclass
class Pair:
    runtime: EdgeRuntime
    plain: LlamaEngine
    captured: LlamaEngine
    prompt: list[int]  # a real question's prompt tokens

    def take(self) -> np.ndarray | None:
        assert self.captured._capture is not None
        return stacked(self.captured._capture, FINAL_STATE)


def stacked(capture: StateCapture, name: str) -> np.ndarray | None:
    """The rows of ``name`` captured since the last take, in batch order (None: none)."""
    rows = capture.take_rows(name)
    return np.stack([rows[i] for i in sorted(rows)]) if rows else None


@pytest.fixture(scope="module", params=["runtime", "smollm2_runtime"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """Two contexts of one model, without and with the capture."""
    runtime: EdgeRuntime = request.getfixturevalue(request.param)
    path = runtime.model.file.path
    plain = LlamaEngine(path, SETTINGS)
    captured = LlamaEngine(path, replace(SETTINGS, capture_hidden=True))
    try:
        yield Pair(runtime, plain, captured, runtime.prompt_tokens(stratified(1, split="calib")[0]))
    finally:
        captured.close()
        plain.close()


def capturing(pair: Pair, names: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> LlamaEngine:
    """An engine whose capture copies ``names`` (the engine itself asks for FINAL_STATE)."""
    with monkeypatch.context() as patch:
        patch.setattr(engine_module, "StateCapture", lambda _: StateCapture(names))
        return LlamaEngine(pair.runtime.model.file.path, replace(SETTINGS, capture_hidden=True))


def test_the_capture_leaves_the_logits_bit_identical(pair: Pair) -> None:
    # a fast pass's shape: the whole prompt, one output row (in SmolLM2's third batch)
    for engine in (pair.plain, pair.captured):
        engine.reset()
    plain = pair.plain.logits_after(pair.prompt).copy()
    assert np.array_equal(pair.captured.logits_after(pair.prompt), plain)
    state = pair.take()
    assert state is not None and state.shape == (1, pair.captured.n_embd)
    assert state.dtype == np.float32 and np.all(np.isfinite(state))
    assert pair.take() is None  # taken once
    # every row an output: result_norm holds them all, in batch order
    many = pair.plain.logits_for_all(pair.prompt[:MANY])
    assert np.array_equal(pair.captured.logits_for_all(pair.prompt[:MANY]), many)
    states = pair.take()
    assert states is not None and states.shape == (MANY, pair.captured.n_embd)


def test_the_captured_state_is_the_engines_hidden_read(pair: Pair) -> None:
    # logits_and_hidden_after decodes the last token alone; so does this, and the two reads are
    # then the same numbers. (From a batch of the whole prompt the state differs - llama.cpp's
    # kernels depend on the batch shape: cosine 0.9993, max |diff| 1.3 for max |h| 65 on Gemma.)
    pair.captured.reset()
    pair.captured.logits_after(pair.prompt[:-1])
    pair.take()
    logits = pair.captured.logits_after(pair.prompt).copy()
    state = pair.take()
    pair.plain.reset()
    reference_logits, reference = pair.plain.logits_and_hidden_after(pair.prompt)
    assert state is not None and state.shape == (1, len(reference))
    assert np.array_equal(state[0], reference)
    assert np.array_equal(logits, reference_logits)


def test_each_captured_row_is_what_the_lm_head_read(pair: Pair) -> None:
    logits = pair.captured.logits_for_all(pair.prompt[:MANY])
    states = pair.take()
    assert states is not None and states.shape == (MANY, pair.captured.n_embd)
    width = -(-states.shape[1] // BLOCK) * BLOCK  # whole 256-blocks (zeros change neither side)
    states = np.pad(states, ((0, 0), (0, width - states.shape[1])))
    rng = np.random.default_rng(0)
    top = np.argsort(logits, axis=1)[:, -8:].ravel()
    vocab = np.unique(np.concatenate([top, rng.choice(logits.shape[1], 512)]))
    weights = output_rows(pair.runtime, vocab)
    weights = np.pad(weights, ((0, 0), (0, width - weights.shape[1])))
    products = states.astype(np.float64) @ weights.T  # (rows, vocabulary subset)
    for row in range(MANY):
        bound = activation_error_bound(weights, states[row])
        error = np.abs(products[row] - logits[row, vocab])
        assert np.all(error <= bound), (row, float((error / bound).max()))
        noise = typical_error(weights, states[row])
        assert rms(error) <= 2.0 * noise, (row, rms(error), noise)
        # batch order: every other row's state misses these logits by more than that (measured:
        # own <= 0.8 x noise, others >= 5.3 x: the nearest are the same token, e.g. two '\n')
        others = [rms(products[o] - logits[row, vocab]) for o in range(MANY) if o != row]
        assert min(others) > 4.0 * noise, (row, min(others) / noise)


def test_a_python_error_in_the_callback_surfaces_from_take(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(tensor: int, name: str, plan: capture.RowPlan) -> dict[int, np.ndarray]:
        raise ZeroDivisionError("a bug in the copy")

    tokens = pair.prompt[:MANY]
    pair.plain.reset()
    plain = pair.plain.logits_after(tokens).copy()
    pair.captured.reset()
    with monkeypatch.context() as patch:
        patch.setattr(capture, "copy_planned", broken)
        logits = pair.captured.logits_after(tokens).copy()
    assert np.array_equal(logits, plain)  # the graph went on after the failed copy
    with pytest.raises(CaptureError, match="result_norm.*a bug in the copy") as caught:
        pair.take()
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert pair.take() is None  # raised once, and nothing half-captured is left
    pair.captured.reset()
    pair.captured.logits_after(tokens)
    state = pair.take()
    assert state is not None and state.shape == (1, pair.captured.n_embd)


def test_a_tensor_that_is_not_f32_is_refused(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = capturing(pair, (FINAL_STATE, KV_WRITE), monkeypatch)
    try:
        tokens = pair.prompt[:MANY]
        pair.plain.reset()
        assert np.array_equal(engine.logits_after(tokens), pair.plain.logits_after(tokens))
        assert engine._capture is not None
        with pytest.raises(CaptureError, match="f16, and only f32") as caught:
            stacked(engine._capture, FINAL_STATE)
        assert caught.value.name == KV_WRITE
    finally:
        engine.close()


def test_a_name_the_graph_never_has_yields_none(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = capturing(pair, (FINAL_STATE, "no-such-tensor"), monkeypatch)
    try:
        engine.logits_after(pair.prompt[:MANY])
        assert engine._capture is not None
        assert stacked(engine._capture, "no-such-tensor") is None
        state = stacked(engine._capture, FINAL_STATE)
        assert state is not None and state.shape == (1, engine.n_embd)
        with pytest.raises(ValueError, match="not captured"):
            engine._capture.take_rows("l_out-0")
    finally:
        engine.close()


def test_layers_are_read_at_marks_in_any_batch_without_changing_the_logits(pair: Pair) -> None:
    every = tuple(range(pair.plain.n_layer))
    layered = LlamaEngine(pair.runtime.model.file.path, replace(SETTINGS, capture_layers=every))
    try:
        prompt, last = pair.prompt, len(pair.prompt) - 1
        # a mark in each batch (SmolLM2's prompt spans three of 256 tokens), and the question's end
        marks = sorted({5, min(300, last - 1), min(600, last - 2), last - 3})
        pair.plain.reset()
        (plain,) = pair.plain.outputs_after(prompt, [last])
        layered.reset()
        read = layered.evaluate(prompt, [last], marks=marks)
        assert np.array_equal(read.outputs[0].logits, plain.logits)  # marks are no outputs
        assert set(read.marked) == set(marks)
        # the same positions as outputs: the layers before the last are the same numbers
        layered.reset()
        as_outputs = layered.evaluate(prompt, [*marks, last])
        for mark, output in zip(marks, as_outputs.outputs, strict=False):
            assert output.layers is not None and output.layers.shape == (len(every), layered.n_embd)
            assert np.array_equal(read.marked[mark][:-1], output.layers[:-1]), mark
            assert np.all(np.isnan(read.marked[mark][-1]))  # computed for output rows only
            assert np.all(np.isfinite(output.layers))
        # rows are told apart: each mark's state differs from every other mark's
        states = [read.marked[m][len(every) // 2] for m in marks]
        assert len({s.tobytes() for s in states}) == len(marks)
    finally:
        layered.close()
