"""The FogGen chain and the LoRA merge on the converter's BPE families: a tiny random Qwen2 and a
tiny random Llama, each with a real small tokenizer, through one chain round (sample, label,
train, merge, export, bench, publish) and a rebuild from the published adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.gguf_export import OutType, export_gguf
from converter.verify import verify
from edge_runtime.mcq import stratified
from testkit.tiny_models import make_adapter
from tests.threads import TEST_THREADS

FAMILIES = ["qwen2", "llama"]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testkit.tiny_models import tiny_bpe_checkpoint

    path = tmp_path_factory.mktemp("chain-bpe") / f"tiny-{request.param}"
    return tiny_bpe_checkpoint(path, request.param, seed=1)


def test_lora_merge_matches_peft_in_llama_cpp(tiny: Path, tmp_path: Path) -> None:
    """A real peft adapter on every linear layer: our merge (then Llama's q/k permutation),
    run in llama.cpp, against transformers running peft's adapter."""
    make_adapter(tiny, tmp_path / "adapter", target_modules="all-linear")
    merged = export_gguf(
        tiny,
        tmp_path / "m.gguf",
        out_type=OutType.F32,
        adapter=tmp_path / "adapter",
        progress=False,
    )
    prompts = stratified(1)[:3]
    report = verify(
        tiny, merged, prompts, adapter=tmp_path / "adapter", threads=TEST_THREADS, progress=False
    )
    assert report.token_id_mismatches == []
    assert report.top1_agreement >= 0.99 and report.max_abs_logit_diff < 0.02, report.to_dict()
    plain = export_gguf(tiny, tmp_path / "p.gguf", out_type=OutType.F32, progress=False)
    without = verify(
        tiny, plain, prompts, adapter=tmp_path / "adapter", threads=TEST_THREADS, progress=False
    )
    assert without.max_abs_logit_diff > 10 * report.max_abs_logit_diff, "the adapter did nothing"


def test_one_chain_round_and_a_rebuild(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.chain_bench import bench_gguf
    from converter.chain.build import build_round
    from converter.chain.runner import Chain
    from converter.train_config import ChainBenchConfig, ChainConfig, TrainConfig

    monkeypatch.setenv("FOGGEN_HOME", str(tmp_path / "home"))
    base = export_gguf(tiny, tmp_path / "base.gguf", out_type=OutType.F32, progress=False)
    config = ChainConfig(
        rounds=1, buffer=5, n_samples=3, group=2, threads=TEST_THREADS, base=str(base),
        train=TrainConfig(epochs=1, lr=1e-3, max_tokens=700),
        bench=ChainBenchConfig(per_domain=1, small_per_domain=1, threads=TEST_THREADS),
    )  # fmt: skip
    publish = tmp_path / "published"
    (manifest,) = Chain(
        tmp_path / "work", config, publish=publish, bench=bench_gguf, progress=False
    ).run()
    steps = manifest["steps"]
    assert steps["sample"]["n"] == 5 and sum(steps["label"]["buckets"].values()) == 5
    assert steps["train"]["steps"] >= 1
    summary = steps["bench"]
    questions = json.loads(Path(summary["report"]).read_text())["models"][0]["questions"]
    assert summary["n_questions"] == len(questions) == 7
    assert summary["gguf_sha256"] == steps["export"]["q4_k_m_sha256"]
    built = build_round(publish, 0, home=tmp_path / "home", threads=TEST_THREADS, base_gguf=base)
    assert built["f32_identical_to_chain"], "the rebuild must give the chain's bits"
