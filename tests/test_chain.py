"""The whole chain end to end on a tiny random Gemma-3: 2 rounds, resume, publish, build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.chain.steps import select_buffer
from tests.threads import TEST_THREADS

pytest.importorskip("torch")
pytest.importorskip("peft")


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def tiny_gguf(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from converter.gguf_export import OutType, export_gguf

    out = tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf"
    return export_gguf(tiny_checkpoint, out, out_type=OutType.F32, progress=False)


def _config(tiny_gguf: Path):  # noqa: ANN202 - a ChainConfig
    from converter.train_config import ChainBenchConfig, ChainConfig, TrainConfig

    return ChainConfig(
        rounds=2, buffer=5, n_samples=3, group=2, threads=TEST_THREADS, base=str(tiny_gguf),
        train=TrainConfig(epochs=1, lr=1e-3, max_tokens=700),
        bench=ChainBenchConfig(per_domain=1, small_per_domain=0, threads=TEST_THREADS),
    )  # fmt: skip


def test_buffer_is_train_split_only_and_rotates() -> None:
    from edge_runtime.mcq import load_questions

    calib_and_eval = {
        q.id for d in ("finance", "law", "coding") for s in ("calib", "eval")
        for q in load_questions(d, s)
    }  # fmt: skip
    first, second = select_buffer(0, 14), select_buffer(1, 14)
    assert not {q.id for q in first + second} & calib_and_eval
    assert len({q.id for q in first}) == 14
    assert first[0].domain != second[0].domain  # the domain order rotates
    assert not {q.id for q in first} & {q.id for q in second}


@pytest.mark.slow
def test_chain_end_to_end_with_resume_publish_and_build(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.chain_bench import bench_gguf
    from converter.chain.build import ChainBuildError, build_round, rerecord_hashes
    from converter.chain.report import write_report
    from converter.chain.runner import Chain

    monkeypatch.setenv("FOGGEN_HOME", str(tmp_path / "home"))
    work, publish = tmp_path / "work", tmp_path / "published"
    ran: list[tuple[int, str]] = []

    def interrupt(r: int, step: str) -> None:
        ran.append((r, step))
        if (r, step) == (1, "train"):
            raise Interrupted

    with pytest.raises(Interrupted):
        Chain(work, _config(tiny_gguf), publish=publish, bench=bench_gguf, hook=interrupt,
              progress=False).run()  # fmt: skip
    before = json.loads((work / "round-00" / "manifest.json").read_text())
    assert list(before["steps"]) == [
        "start", "buffer", "sample", "label", "train", "merge", "export", "bench", "publish"
    ]  # fmt: skip
    ran.clear()
    chain = Chain(
        work, _config(tiny_gguf), publish=publish, bench=bench_gguf,
        hook=lambda r, s: ran.append((r, s)),
        progress=False,
    )  # fmt: skip
    manifests = chain.run()
    assert ran == [(1, s) for s in ("train", "merge", "export", "bench", "publish")]
    assert manifests[0]["steps"] == before["steps"]  # nothing of round 0 ran again
    for m in manifests:
        sample = m["steps"]["sample"]
        assert sample["n"] == 5 and sample["probe"]["batched_qps"] > 0
        assert sum(m["steps"]["label"]["buckets"].values()) == 5
        assert m["steps"]["train"]["steps"] >= 1
        summary = m["steps"]["bench"]  # foggen bench's own report, summarised
        questions = json.loads(Path(summary["report"]).read_text())["models"][0]["questions"]
        assert summary["n_questions"] == len(questions) == 7
        right = sum(q["local_correct"] for q in questions)
        assert summary["raw_accuracy"] == pytest.approx(right / 7, abs=1e-3)
        assert summary["gguf_sha256"] == m["steps"]["export"]["q4_k_m_sha256"]
    samples = (work / "round-01" / "samples.jsonl").read_text().splitlines()
    assert all(len(json.loads(line)["samples"]) == 3 for line in samples)
    assert sorted(p.name for p in publish.iterdir()) == ["round-00", "round-01"]

    written = write_report(
        manifests, tmp_path / "report" / "chain", title="tiny", config=chain.config.to_dict()
    )
    md = (tmp_path / "report" / "chain.md").read_text()
    assert "after round 1" in md and "buffer 5 train-split questions" in md
    assert written[0].suffix == ".json"

    built = build_round(
        publish, 1, home=tmp_path / "home", threads=TEST_THREADS, base_gguf=tiny_gguf
    )
    assert built["f32_identical_to_chain"]
    assert built["f32_sha256"] == manifests[1]["steps"]["export"]["f32_sha256"]
    assert Path(built["path"]).is_file()

    # the maintenance path for a deliberate converter change: a hash the converter no longer
    # gives is re-recorded, the previous one kept; a round that still matches is left alone
    path = publish / "round-01" / "manifest.json"
    stale = json.loads(path.read_text())
    stale["steps"]["export"]["f32_sha256"] = "0" * 64
    path.write_text(json.dumps(stale, indent=1))
    with pytest.raises(ChainBuildError, match="differs from the chain's"):
        build_round(publish, 1, home=tmp_path / "home", threads=TEST_THREADS, base_gguf=tiny_gguf)
    round_0 = (publish / "round-00" / "manifest.json").read_text()
    changes = rerecord_hashes(publish, "test", home=tmp_path / "home", base_gguf=tiny_gguf)
    assert [c["round"] for c in changes] == [0, 1]
    assert changes[1]["new"]["f32_sha256"] == built["f32_sha256"]
    after = json.loads(path.read_text())
    assert after["steps"]["export"]["f32_sha256"] == built["f32_sha256"]
    (record,) = after["rerecorded"]
    assert record["reason"] == "test" and record["previous"]["f32_sha256"] == "0" * 64
    assert (publish / "round-00" / "manifest.json").read_text() == round_0
    rebuilt = build_round(
        publish, 1, home=tmp_path / "home", threads=TEST_THREADS, base_gguf=tiny_gguf
    )
    assert rebuilt["round"] == 1


def test_build_refuses_another_base(tiny_gguf: Path, tmp_path: Path, model_path: Path) -> None:
    from converter.chain.build import ChainBuildError, build_round

    round_dir = tmp_path / "chain" / "round-00"
    round_dir.mkdir(parents=True)
    start = {"base": str(tiny_gguf), "base_gguf_sha256": "0" * 64}
    (round_dir / "manifest.json").write_text(json.dumps({"steps": {"start": start}}))
    with pytest.raises(ChainBuildError, match="did not start from"):
        build_round(tmp_path / "chain", 0, home=tmp_path / "home", base_gguf=model_path)


def test_sampling_resumes_after_the_last_finished_group(tiny_gguf: Path, tmp_path: Path) -> None:
    from converter.chain.context import Context
    from converter.chain.sampling import sample_buffer

    config = _config(tiny_gguf)
    ctx = Context(tmp_path, config, None, False)
    buffer = select_buffer(0, 4)
    done = json.dumps({"id": buffer[0].id, "samples": ["0.0/A"] * 3, "fraction_correct": 0.0})
    (ctx.round_dir(0) / "samples.jsonl").write_text(done + "\n" + '{"id": "torn')
    result = sample_buffer(ctx, 0, tiny_gguf, buffer)
    rows = [json.loads(x) for x in (ctx.round_dir(0) / "samples.jsonl").read_text().splitlines()]
    assert result["resumed_after"] == 1
    assert [r["id"] for r in rows] == [q.id for q in buffer]  # the torn line is gone
    assert rows[0]["samples"] == ["0.0/A"] * 3  # kept, not sampled again


def test_gguf_teacher_samples_round_0(tiny_gguf: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from converter.chain.context import Context
    from converter.chain.steps import STEPS

    config = replace(_config(tiny_gguf), teacher=str(tiny_gguf), buffer=3)
    ctx = Context(tmp_path, config, None, False)  # no chain checkpoint exists: only the teacher
    STEPS["buffer"](ctx, 0)
    facts = STEPS["sample"](ctx, 0)
    assert facts["model"] == str(tiny_gguf) and facts["n"] == 3
    rows = [json.loads(x) for x in (ctx.round_dir(0) / "samples.jsonl").read_text().splitlines()]
    assert all(len(row["samples"]) == 3 for row in rows)


def test_chain_model_reference(tmp_path: Path) -> None:
    from edge_runtime.errors import ModelNotFoundError
    from edge_runtime.models import chain_model_path, resolve_model

    with pytest.raises(ModelNotFoundError, match="foggen model build"):
        resolve_model("chain:3", home=tmp_path)
    with pytest.raises(ValueError, match="chain:N"):
        chain_model_path("chain:x", home=tmp_path)
    assert chain_model_path("chain:3", home=tmp_path).name == "chain-03-q4_k_m.gguf"
