"""Every layer read in a real fast pass (the pass stays bit-identical), stored in compact chunks
that round-trip, resume after an interruption and refuse what does not fit."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from benchmarks.labels import labelled_questions, run
from edge_runtime.config import Mode
from edge_runtime.decoding import LETTER, POSITIONS, QUESTION, EdgeResult
from edge_runtime.mcq import stratified
from edge_runtime.routing.states import StateStore, StateStoreError, from_half, to_half
from edge_runtime.runtime import EdgeRuntime


@pytest.fixture
def layered(layered_runtime: EdgeRuntime) -> EdgeRuntime:
    return layered_runtime


def test_a_pass_reading_every_layer_is_the_pass_without(
    runtime: EdgeRuntime, layered: EdgeRuntime
) -> None:
    n_layer, width = layered.engine.n_layer, layered.engine.n_embd
    for question in stratified(1, split="calib", domains=("math", "law")):
        plain = runtime.run_edge(question, mode=Mode.FAST)
        read = layered.run_edge(question, mode=Mode.FAST)
        assert read == plain  # letter, bucket, both distributions, bit for bit
        assert plain.layers is None and read.layers is not None
        assert set(read.layers) == set(POSITIONS)
        letter, end = read.layers[LETTER], read.layers[QUESTION]
        assert letter.shape == end.shape == (n_layer, width)
        assert np.all(np.isfinite(letter)) and np.all(np.isfinite(end[:-1]))
        assert np.all(np.isnan(end[-1]))  # the last layer exists at output rows only
        assert not np.array_equal(letter[:-1], end[:-1])  # two positions, two states


def test_half_storage_is_exact_scaling_of_large_rows() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(3, 4, 16)).astype(np.float32) * np.array([1, 100, 3e4, 2e5])[:, None]
    rows[1, 2] = np.nan
    half, exponent = to_half(rows)
    assert half.dtype == np.float16 and np.all(np.isfinite(half[~np.isnan(rows)]))
    assert exponent[:, 0].max() == 0 and exponent[:, 3].min() >= 4  # 2e5 > 2**14 * 2**3
    back = from_half(half, exponent)
    assert np.array_equal(np.isnan(back), np.isnan(rows))
    finite = ~np.isnan(rows)
    assert np.allclose(back[finite], rows[finite], rtol=1e-3, atol=1e-4)


def test_label_runs_store_chunks_that_resume_and_read_back(
    layered: EdgeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOGGEN_HOME", str(tmp_path))
    questions = labelled_questions(["calib"])[:3]
    stop = threading.Event()
    stop.set()  # a stop asked for (Ctrl-C, SIGTERM) is honoured between questions
    assert run(layered, questions, progress=False, stop=stop)[1] == 0
    states, ran = run(layered, questions[:2], progress=False)
    assert ran == 2 and len(states.chunks()) == 1
    states, ran = run(layered, questions, progress=False)  # resumes: only the third runs
    assert ran == 1 and len(states.chunks()) == 2
    again = StateStore(states.directory)
    assert all(q in again for q in questions) and len(again) == 3
    result = layered.run_edge(questions[1], mode=Mode.FAST)
    assert result.layers is not None
    stored = again.read([questions[2], questions[1]], LETTER, [0, 5])
    assert stored.shape == (2, 2, layered.engine.n_embd) and stored.dtype == np.float32
    assert np.allclose(stored[1], result.layers[LETTER][[0, 5]], rtol=2e-3, atol=1e-3)
    with pytest.raises(StateStoreError, match="layers"):
        again.add(questions[0], result, [0, 1])
    assert labelled_questions(["calib"]) == labelled_questions(["calib"])  # a fixed order
    with pytest.raises(SystemExit, match="never fitted"):
        labelled_questions(["eval"])


def test_a_pass_without_both_positions_is_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    result = EdgeResult(letter="A", bucket="0.5", output="", response_tokens=())
    with pytest.raises(StateStoreError, match="both positions"):
        store.add(stratified(1)[0], result, [0])
