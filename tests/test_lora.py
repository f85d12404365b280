"""LoRA merging in numpy against peft's own merge_and_unload, and its refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from converter.checkpoint import open_checkpoint
from converter.errors import AdapterError
from converter.gguf_export import OutType, export_gguf
from converter.lora import LoraModule, load_adapter
from converter.safetensors_io import write_safetensors
from converter.verify import verify
from edge_runtime.mcq import stratified

OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {"target_modules": "all-linear"},
    "rslora+patterns+layers": {
        "target_modules": [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        "use_rslora": True,
        "rank_pattern": {"q_proj": 2},
        "alpha_pattern": {"down_proj": 32},
        "layers_to_transform": [0, 2, 5],
    },
    "regex": {"target_modules": r".*\.(q_proj|v_proj)"},
}


def make_adapter(
    base: Path, out: Path, *, r: int = 4, lora_alpha: int = 8, **options: Any
) -> dict[str, np.ndarray]:
    """A real peft adapter with non-zero B; returns peft's merged weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, **options))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    peft_model.save_pretrained(out)
    merged = peft_model.merge_and_unload()
    return {k: v.float().numpy() for k, v in merged.state_dict().items()}


@pytest.mark.parametrize("variant", list(OPTIONS))
def test_our_merge_equals_peft_merge_and_unload(
    tiny_checkpoint: Path, tmp_path: Path, variant: str
) -> None:
    expected = make_adapter(tiny_checkpoint, tmp_path / "adapter", **OPTIONS[variant])
    checkpoint = open_checkpoint(tiny_checkpoint)
    adapter = load_adapter(tmp_path / "adapter", checkpoint)
    assert adapter.modules, "nothing was adapted"
    changed = 0
    for name, base in checkpoint.tensors():
        ours = adapter.merged(name, base)
        np.testing.assert_allclose(ours, expected[name], rtol=0, atol=2e-6, err_msg=name)
        changed += not np.array_equal(ours, base)
    assert changed == len(adapter.modules)
    if variant == "rslora+patterns+layers":
        assert not any(".layers.1." in n for n in adapter.modules)
        assert adapter.modules["model.layers.0.self_attn.q_proj.weight"].a.shape[0] == 2


def test_merged_gguf_matches_transformers_with_the_adapter(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    make_adapter(tiny_checkpoint, tmp_path / "adapter", target_modules="all-linear")
    gguf = export_gguf(
        tiny_checkpoint,
        tmp_path / "m.gguf",
        out_type=OutType.F32,
        adapter=tmp_path / "adapter",
        progress=False,
    )
    report = verify(
        tiny_checkpoint, gguf, stratified(1)[:3], adapter=tmp_path / "adapter", progress=False
    )
    assert report.top1_agreement >= 0.99 and report.max_abs_logit_diff < 0.05, report.to_dict()
    plain = export_gguf(tiny_checkpoint, tmp_path / "p.gguf", out_type=OutType.F32, progress=False)
    without = verify(
        tiny_checkpoint, plain, stratified(1)[:3], adapter=tmp_path / "adapter", progress=False
    )
    assert without.max_abs_logit_diff > 10 * report.max_abs_logit_diff, (
        "the adapter changed nothing"
    )


def test_fan_in_fan_out_transposes_the_update() -> None:
    a, b = np.ones((2, 3), np.float32), np.arange(8, dtype=np.float32).reshape(4, 2)
    assert LoraModule(a, b, 0.5, fan_in_fan_out=True).delta().shape == (3, 4)
    np.testing.assert_array_equal(LoraModule(a, b, 0.5, False).delta(), 0.5 * b @ a)


def _adapter_dir(tiny_checkpoint: Path, tmp_path: Path, config: dict[str, Any]) -> Path:
    make_adapter(tiny_checkpoint, tmp_path / "a", target_modules=["q_proj"])
    merged = {**json.loads((tmp_path / "a" / "adapter_config.json").read_text()), **config}
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps(merged))
    return tmp_path / "a"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"use_dora": True}, "DoRA"),
        ({"bias": "all"}, "bias 'all'"),
        ({"peft_type": "IA3"}, "IA3"),
        ({"r": 8}, "rank 4 does not match r=8"),
    ],
)
def test_unsupported_adapters_are_refused(
    tiny_checkpoint: Path, tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    directory = _adapter_dir(tiny_checkpoint, tmp_path, config)
    with pytest.raises(AdapterError, match=message):
        export_gguf(tiny_checkpoint, tmp_path / "x.gguf", adapter=directory, progress=False)
    assert not (tmp_path / "x.gguf").exists()


def test_an_adapter_for_another_model_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    directory = _adapter_dir(tiny_checkpoint, tmp_path, {})
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    write_safetensors(
        directory / "adapter_model.safetensors",
        [(key, np.ones((4, 32))), (key.replace("lora_A", "lora_B"), np.ones((64, 4)))],
    )
    with pytest.raises(AdapterError, match="trained on another model"):
        load_adapter(directory, open_checkpoint(tiny_checkpoint))


def test_modules_to_save_replace_the_base_tensor(tiny_checkpoint: Path, tmp_path: Path) -> None:
    directory = _adapter_dir(
        tiny_checkpoint, tmp_path, {"modules_to_save": ["post_attention_layernorm"]}
    )
    checkpoint = open_checkpoint(tiny_checkpoint)
    name = "model.layers.3.post_attention_layernorm.weight"
    shutil.copy(directory / "adapter_model.safetensors", tmp_path / "orig.safetensors")
    from converter.safetensors_io import SafetensorsFile

    original = SafetensorsFile(tmp_path / "orig.safetensors")
    tensors = [(k, original.read(k)) for k in original.tensors] + [
        (_peft_key(name), np.full(64, 7.0))
    ]
    write_safetensors(directory / "adapter_model.safetensors", tensors, dtype="F32")
    adapter = load_adapter(directory, checkpoint)
    base = dict(checkpoint.tensors())[name]
    assert np.array_equal(adapter.merged(name, base), np.full(64, 7.0, np.float32))


def _peft_key(name: str) -> str:
    return "base_model.model." + name
