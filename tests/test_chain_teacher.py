"""Sibling distillation through an OpenAI-compatible endpoint: real HTTP servers on 127.0.0.1.

The simulated cloud samples when asked at temperature > 0 (an independent draw per seed), so
the labels can be recomputed from its answer book; the fault cloud drops, garbles and fails
requests on cue.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.simulated_cloud import SimulatedCloud
from converter.chain.context import Context
from converter.chain.steps import STEPS, select_buffer
from converter.chain.teacher import KEY_ENV, TeacherError, sample_with_endpoint
from converter.train_config import ChainConfig
from testkit.fault_cloud import Fault, fault_cloud

N = 4


def _context(tmp_path: Path, teacher: str, group: int = 3) -> Context:
    config = ChainConfig(teacher=teacher, buffer=6, n_samples=N, group=group, seed=11)
    return Context(tmp_path / "work", config, None, False)


def test_endpoint_teacher_labels_round_0(sim_cloud: SimulatedCloud, tmp_path: Path) -> None:
    ctx = _context(tmp_path, sim_cloud.url)
    before = sim_cloud.stats.requests
    STEPS["buffer"](ctx, 0)
    facts = STEPS["sample"](ctx, 0)
    label = STEPS["label"](ctx, 0)
    assert sim_cloud.stats.requests - before == 6 * N
    assert facts["teacher"] == "endpoint" and facts["n"] == 6 and facts["unreadable_samples"] == 0
    rows = {json.loads(x)["id"]: json.loads(x) for x in _lines(ctx, "samples.jsonl")}
    examples = [json.loads(x) for x in _lines(ctx, "train.jsonl")]
    assert label["n"] == len(examples) == 6
    varied = 0
    for q in select_buffer(0, 6):
        replies = [sim_cloud.book.reply(q.text, q.choices, draw=11 + k) for k in range(N)]
        assert rows[q.id]["samples"] == [reply.letter for reply in replies]
        expected = sum(bool(reply.correct) for reply in replies) / N
        assert rows[q.id]["fraction_correct"] == expected
        varied += len(set(rows[q.id]["samples"])) > 1
        example = next(e for e in examples if e["question"] == q.text)
        assert example["confidence"] == expected and example["answer"] == q.answer
    assert varied >= 1  # the samples are draws at temperature 0.7, not one repeated reply


def test_teacher_failure_keeps_answered_questions_and_resumes(
    sim_cloud: SimulatedCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-teacher-secret")
    ctx = _context(tmp_path, "unused", group=1)
    buffer = select_buffer(0, 4)
    garbled = Fault(content="I would rather not say.")
    script = [Fault(), garbled, Fault(), Fault(), Fault(), Fault(), Fault(), Fault()]
    with fault_cloud([*script, Fault(status=500, content="down")]) as cloud:
        with pytest.raises(TeacherError, match="run the same command again"):
            sample_with_endpoint(ctx, 0, cloud.url, buffer)
        bodies = [hit.body for hit in cloud.hits]
        assert [b["seed"] for b in bodies[:N]] == [11, 12, 13, 14]  # type: ignore[index]
        assert {b["temperature"] for b in bodies} == {0.7}  # type: ignore[index]
        assert all(h.headers["Authorization"] == "Bearer sk-teacher-secret" for h in cloud.hits)
    rows = [json.loads(x) for x in _lines(ctx, "samples.jsonl")]
    assert [r["id"] for r in rows] == [buffer[0].id, buffer[1].id]
    assert rows[0]["samples"] == ["B", "?", "B", "B"]  # the garbled reply: a wrong sample
    assert rows[1]["samples"] == ["B"] * N

    facts = sample_with_endpoint(ctx, 0, sim_cloud.url, buffer)  # the same step, run again
    rows = [json.loads(x) for x in _lines(ctx, "samples.jsonl")]
    assert facts["resumed_after"] == 2 and [r["id"] for r in rows] == [q.id for q in buffer]
    assert rows[0]["samples"] == ["B", "?", "B", "B"]  # kept, not asked again
    assert facts["unreadable_samples"] == 1
    written = "".join(p.read_text() for p in ctx.work.rglob("*") if p.is_file())
    assert "sk-teacher-secret" not in written + json.dumps(facts)


def _lines(ctx: Context, name: str) -> list[str]:
    return (ctx.round_dir(0) / name).read_text(encoding="utf-8").splitlines()


def test_unreachable_or_invalid_teacher_is_a_clear_error(tmp_path: Path) -> None:
    from testkit.fault_cloud import refused_url

    ctx = _context(tmp_path, "unused")
    buffer = select_buffer(0, 2)
    with refused_url() as url, pytest.raises(TeacherError, match="does not answer"):
        sample_with_endpoint(ctx, 0, url, buffer)
    with pytest.raises(TeacherError, match=f"credentials.*{KEY_ENV}") as caught:
        sample_with_endpoint(ctx, 0, "http://me:secret@127.0.0.1:9/v1", buffer)
    assert "secret" not in str(caught.value)
