"""The per-question pass cache: measured once, resumed after an interruption, never mixed up."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from edge_runtime.mcq import stratified
from edge_runtime.question import make_question
from edge_runtime.routing.passes import (
    PassStore,
    fast_passes,
    question_key,
    read_rows,
    settings_fingerprint,
)
from edge_runtime.runtime import EdgeRuntime


def _store(runtime: EdgeRuntime, path: Path) -> PassStore:
    return PassStore(
        path, model_sha256=runtime.model.file.sha256, settings=settings_fingerprint(runtime)
    )


def test_passes_are_run_once_then_read_back_identically(
    runtime: EdgeRuntime, tmp_path: Path
) -> None:
    questions = stratified(1, domains=("math", "law", "coding"))
    path = tmp_path / "passes.jsonl"
    first = fast_passes(runtime, questions, store=_store(runtime, path), progress=False)
    assert [p.cached for p in first] == [False] * 3
    decoded = runtime.engine.n_decoded
    again = fast_passes(runtime, questions, store=_store(runtime, path), progress=False)
    assert runtime.engine.n_decoded == decoded, "a cached pass must not run the model"
    assert [p.cached for p in again] == [True] * 3
    for a, b in zip(first, again, strict=True):
        assert (a.result.letter, a.result.bucket) == (b.result.letter, b.result.bucket)
        assert a.result.letter_probs == b.result.letter_probs
        assert a.result.bucket_probs == b.result.bucket_probs
        assert a.result.n_prompt_tokens == b.result.n_prompt_tokens
        assert b.edge_ms == round(a.edge_ms, 3)


def test_an_interrupted_run_resumes_and_a_torn_line_is_skipped(
    runtime: EdgeRuntime, tmp_path: Path
) -> None:
    questions = stratified(1, domains=("math", "law"))
    path = tmp_path / "passes.jsonl"
    fast_passes(runtime, questions[:1], store=_store(runtime, path), progress=False)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "torn')  # the process died mid-write
    store = _store(runtime, path)
    assert len(store) == 1
    passes = fast_passes(runtime, questions, store=store, progress=False)
    assert [p.cached for p in passes] == [True, False]
    assert len(_store(runtime, path)) == 2


def test_rows_of_other_settings_models_or_question_texts_are_not_used(
    runtime: EdgeRuntime, tmp_path: Path
) -> None:
    question = stratified(1, domains=("math",))[0]
    path = tmp_path / "passes.jsonl"
    fast_passes(runtime, [question], store=_store(runtime, path), progress=False)
    sha256, settings = runtime.model.file.sha256, settings_fingerprint(runtime)
    assert PassStore(path, model_sha256="0" * 64, settings=settings).get(question) is None
    assert PassStore(path, model_sha256=sha256, settings="other").get(question) is None
    edited = replace(question, text=question.text + " (edited)")
    assert question_key(edited) != question_key(question)
    assert PassStore(path, model_sha256=sha256, settings=settings).get(edited) is None


def test_the_fingerprint_follows_the_settings_that_change_the_numbers(
    runtime: EdgeRuntime,
) -> None:
    base = settings_fingerprint(runtime)
    assert settings_fingerprint(runtime) == base
    original = runtime.config
    try:
        runtime.config = replace(original, n_batch=256)
        assert settings_fingerprint(runtime) != base
        runtime.config = replace(original, tau=0.9, n_threads=1)  # routing, not the pass
        assert settings_fingerprint(runtime) == base
    finally:
        runtime.config = original


def test_seeded_rows_from_elsewhere_are_taken_once(tmp_path: Path) -> None:
    question = make_question("2 + 2 = ?", ["3", "4"], id="q1")
    row = {
        "key": question_key(question),
        "model_sha256": "a" * 64,
        "settings": "s",
        "letter": "B",
        "bucket": "1.0",
        "bucket_probs": {"1.0": 1.0},
        "letter_probs": {"A": 0.1, "B": 0.9},
        "n_prompt_tokens": 90,
        "edge_ms": 12.5,
    }
    store = PassStore(tmp_path / "p.jsonl", model_sha256="a" * 64, settings="s")
    foreign = {**row, "model_sha256": "b" * 64}
    assert store.seed([row, row, foreign]) == 1
    cached = store.get(question)
    assert cached is not None and cached.result.letter == "B" and cached.cached
    assert [json.loads(json.dumps(r))["key"] for r in read_rows(tmp_path / "p.jsonl")] == [
        row["key"]
    ]
