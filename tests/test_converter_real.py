"""Real size: the embedded Gemma-3-270M -> bf16 HF checkpoint -> our GGUFs -> llama.cpp,
against transformers and against the original Q4_K_M file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.gguf_export import OutType, export_gguf
from converter.gguf_reader import GGUFReader
from converter.quantize import QuantType, quantize
from converter.to_hf import read_fields
from converter.verify import compare_ggufs, decision_agreement, verify
from edge_runtime.mcq import stratified
from tests.threads import TEST_THREADS

pytestmark = pytest.mark.slow


def test_hf_checkpoint_has_the_released_checkpoints_format(hf_checkpoint: Path) -> None:
    import json

    from converter.safetensors_io import SafetensorsFile

    config = json.loads((hf_checkpoint / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"] and config["dtype"] == "bfloat16"
    tensors = SafetensorsFile(hf_checkpoint / "model.safetensors").tensors
    assert {t.dtype for t in tensors.values()} == {"BF16"} and len(tensors) == 236
    assert (hf_checkpoint / "tokenizer.model").stat().st_size > 1_000_000
    generation = json.loads((hf_checkpoint / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [1, 106]  # <eos>, then the vocabulary's <end_of_turn>


def test_f32_export_matches_transformers(hf_checkpoint: Path, f32_gguf: Path) -> None:
    report = verify(
        hf_checkpoint, f32_gguf, stratified(1), threads=TEST_THREADS, progress=False
    )  # ~1,700 positions
    assert report.token_id_mismatches == []
    assert report.top1_agreement >= 0.99, report.to_dict()
    assert report.letter_agreement == 1.0 and report.max_bucket_prob_diff < 0.02, report.to_dict()


def test_bf16_export_matches_transformers(hf_checkpoint: Path, tmp_path: Path) -> None:
    bf16 = export_gguf(hf_checkpoint, tmp_path / "bf16.gguf", out_type=OutType.BF16, progress=False)
    report = verify(hf_checkpoint, bf16, stratified(1), threads=TEST_THREADS, progress=False)
    assert report.token_id_mismatches == []
    assert report.top1_agreement >= 0.98, report.to_dict()


def test_tokenizer_keys_equal_the_embedded_gguf(model_path: Path, f32_gguf: Path) -> None:
    original, ours = (
        read_fields(GGUFReader(model_path)),
        read_fields(GGUFReader(f32_gguf)),
    )
    keys = {k for k in original if k.startswith("tokenizer.")}
    assert keys == {k for k in ours if k.startswith("tokenizer.")}
    for key in sorted(keys):
        assert ours[key] == original[key], key


def test_decisions_agree_with_the_original_q4_k_m_up_to_llama_cpp_noise(
    model_path: Path, f32_gguf: Path
) -> None:
    """The letter with the bucket held fixed. Not 95%: the same Q4_K_M file evaluated in batches
    of 512 vs 64 agrees with itself on only 92.4% of 105 eval questions (`make parity`; quantized
    kernels are batch-shape dependent and the base model's letters are near-ties), and ours
    measured 89.5% there. The bar: no bucket flip, and at most 15% letter flips."""
    ours = decision_agreement(
        model_path, f32_gguf, stratified(3), threads=TEST_THREADS, progress=False
    )
    assert ours.bucket_flips == 0, ours.to_dict()
    assert ours.to_dict()["letter_agreement"] >= 0.85, ours.to_dict()


# top-1 against F32: Q8_0 / Q4_K_M measured 0.98 / 0.96 on 14 prompts (`make parity`), IQ4_NL
# 0.775 on these 3 (543 positions): the 270M is fragile at 4 bits without Q4_K_M's wider types
# for its sensitive tensors (IQ4_NL changes 45 % of its letters on the full eval, `make ladder`)
@pytest.mark.parametrize(
    "quant, max_ratio, min_top1",
    [(QuantType.Q8_0, 0.30, 0.97), (QuantType.Q4_K_M, 0.26, 0.85), (QuantType.IQ4_NL, 0.26, 0.70)],
)
def test_quantize_our_export(
    f32_gguf: Path, tmp_path: Path, quant: QuantType, max_ratio: float, min_top1: float
) -> None:
    report = quantize(f32_gguf, tmp_path / f"{quant.value}.gguf", quant, threads=TEST_THREADS)
    assert report.size_bytes < max_ratio * report.source_size_bytes
    assert "F32" in report.tensor_types  # norms stay F32
    if quant is QuantType.Q4_K_M:  # 640-wide rows: many tensors fall back from K-quants
        assert {"Q4_K", "Q6_K", "Q5_0"} <= set(report.tensor_types)
    if quant is QuantType.IQ4_NL:  # 32-wide blocks: no fallback for the weights
        assert report.tensor_types.get("IQ4_NL", 0) >= 100, report.tensor_types
    parity = compare_ggufs(
        f32_gguf, report.path, stratified(1)[:3], threads=TEST_THREADS, progress=False
    )
    assert parity.top1_agreement >= min_top1, parity.to_dict()


def test_real_size_lora_merge_equals_peft_and_runs_in_llama_cpp(
    hf_checkpoint: Path, tmp_path: Path
) -> None:
    """The recipe's adapter shape (r=16, alpha=32, all linear layers) on the full-size model."""
    from converter.checkpoint import open_checkpoint
    from converter.lora import load_adapter
    from testkit.tiny_models import make_adapter

    expected = make_adapter(
        hf_checkpoint, tmp_path / "adapter", target_modules="all-linear", r=16, lora_alpha=32
    )
    checkpoint = open_checkpoint(hf_checkpoint)
    adapter = load_adapter(tmp_path / "adapter", checkpoint)
    assert len(adapter.modules) == 18 * 7
    worst = max(
        float(np.abs(adapter.merged(name, base) - expected[name]).max())
        for name, base in checkpoint.tensors()
    )
    assert worst < 1e-5, worst
    del expected
    merged = export_gguf(
        hf_checkpoint,
        tmp_path / "merged.gguf",
        out_type=OutType.F32,
        adapter=tmp_path / "adapter",
        progress=False,
    )
    report = verify(
        hf_checkpoint,
        merged,
        stratified(1)[:3],
        adapter=tmp_path / "adapter",
        threads=TEST_THREADS,
        progress=False,
    )
    # measured 0.989-0.99+ top-1 (537-538 of 543 positions: random LoRA updates leave near
    # ties that fp32 reduction order flips) and mean KL 2.3e-5; a wrong merge gives KL >> 1e-3
    assert report.top1_agreement >= 0.98, report.to_dict()
    assert report.mean_kl < 1e-3 and report.letter_agreement == 1.0, report.to_dict()
