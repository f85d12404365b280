"""LoRA merging in numpy against peft's own merge_and_unload, and its refusals."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter import lora
from converter.checkpoint import open_checkpoint
from converter.errors import AdapterError
from converter.gguf_export import OutType, export_gguf
from converter.lora import LoraAdapter, LoraModule, load_adapter
from converter.safetensors_io import write_safetensors
from converter.verify import verify
from edge_runtime.mcq import stratified
from testkit.tiny_models import make_adapter
from tests.threads import TEST_THREADS

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


@pytest.mark.slow
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
        tiny_checkpoint,
        gguf,
        stratified(1)[:3],
        adapter=tmp_path / "adapter",
        threads=TEST_THREADS,
        progress=False,
    )
    assert report.top1_agreement >= 0.99 and report.max_abs_logit_diff < 0.05, report.to_dict()
    plain = export_gguf(tiny_checkpoint, tmp_path / "p.gguf", out_type=OutType.F32, progress=False)
    without = verify(
        tiny_checkpoint,
        plain,
        stratified(1)[:3],
        adapter=tmp_path / "adapter",
        threads=TEST_THREADS,
        progress=False,
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


# -- determinism: the merge is a fixed-order float64 sum, the same bits on any CPU -------------
_M64 = (1 << 64) - 1


def _portable_floats(seed: int, shape: tuple[int, ...], exponents: range) -> np.ndarray:
    """float32 values with full random significands, signs and exponents in ``exponents``,
    from a pure-Python splitmix64 stream: the same values on any machine and numpy version."""
    x, words = seed, []
    for _ in range(int(np.prod(shape))):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
        exponent = 127 + exponents[(z >> 24) % len(exponents)]
        words.append(((z >> 63) << 31) | (exponent << 23) | (z & 0x7FFFFF))
    return np.array(words, dtype=np.uint32).view(np.float32).reshape(shape)


def _module(rows: int, cols: int, rank: int, *, seed: int, rslora: bool, fifo: bool) -> LoraModule:
    """A LoRA module whose update has the (out, in) shape (rows, cols), or (cols, rows) with
    fan_in_fan_out, with PEFT's scale alpha / r or rsLoRA's alpha / sqrt(r)."""
    alpha = 32.0
    scale = alpha / (math.sqrt(rank) if rslora else rank)
    a = _portable_floats(seed, (rank, cols), range(-9, 1))
    b = _portable_floats(seed + 1, (rows, rank), range(-12, -2))
    return LoraModule(a, b, scale, fan_in_fan_out=fifo)


def _reference_merge(module: LoraModule, weight: np.ndarray | None) -> np.ndarray:
    """The definition, in plain Python floats (IEEE doubles), one element at a time: products
    summed over k = 0..r-1 in order, times scale, plus W, rounded once to float32."""
    a, b = module.a.astype(float).tolist(), module.b.astype(float).tolist()
    out_rows, rank, in_cols = len(b), len(a), len(a[0])
    delta = [[0.0] * in_cols for _ in range(out_rows)]
    for i in range(out_rows):
        for j in range(in_cols):
            acc = b[i][0] * a[0][j]
            for k in range(1, rank):
                acc = acc + b[i][k] * a[k][j]
            delta[i][j] = acc * module.scale
    if module.fan_in_fan_out:
        delta = [list(column) for column in zip(*delta, strict=True)]
    w = weight.astype(float).tolist() if weight is not None else None
    values = [
        [d + (w[i][j] if w is not None else 0.0) for j, d in enumerate(row)]
        for i, row in enumerate(delta)
    ]
    return np.array(values, dtype=np.float64).astype(np.float32)


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


SHAPES = [(1, 1, 1), (7, 5, 3), (37, 29, 16), (3, 130, 2), (130, 3, 5)]


@pytest.mark.parametrize("rows, cols, rank", SHAPES)
@pytest.mark.parametrize("rslora", [False, True])
@pytest.mark.parametrize("fifo", [False, True])
@pytest.mark.parametrize("block", [1 << 16, 7])  # one block, and row blocks with a remainder
def test_merge_is_the_fixed_order_float64_sum_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
    rows: int,
    cols: int,
    rank: int,
    rslora: bool,
    fifo: bool,
    block: int,
) -> None:
    monkeypatch.setattr(lora, "BLOCK_ELEMENTS", block)
    module = _module(
        rows, cols, rank, seed=rows * 1000 + cols * 10 + rank, rslora=rslora, fifo=fifo
    )
    weight = _portable_floats(7 + rank, module.shape, range(-6, 0))
    adapter = LoraAdapter(modules={"w": module})
    merged = adapter.merged("w", weight)
    assert merged.dtype == np.float32 and merged.shape == module.shape
    np.testing.assert_array_equal(_bits(merged), _bits(_reference_merge(module, weight)))
    np.testing.assert_array_equal(_bits(module.delta()), _bits(_reference_merge(module, None)))


def test_the_update_is_summed_in_float64_and_rounded_once() -> None:
    """1 + 2**-30 is 1 in float32: any float32 product (BLAS or not, FMA or not) loses the
    2**-30 that survives here; so does rounding the update before adding W."""
    a = np.array([[1.0], [2.0**-30]], dtype=np.float32)  # (r=2, in=1)
    b = np.ones((1, 2), dtype=np.float32)  # (out=1, r=2)
    merged = LoraAdapter(modules={"w": LoraModule(a, b, 1.0, False)}).merged(
        "w", np.array([[-1.0]], np.float32)
    )
    assert merged[0, 0] == np.float32(2.0**-30)
    assert np.float32(1.0) + np.float32(2.0**-30) == np.float32(1.0)  # lost in float32


# sha256 of the merged float32 bytes (= the plain-Python reference's), recorded once
GOLDEN = {
    (False, False): "67b6efaa2a761d3a166b44c42d8f62a110847225588207e84f6e3c3153a92696",
    (True, False): "c70d73c6677180287d0270b9dbc3a8386527496b414dbc7898e828a83db67a0d",
    (False, True): "b3bf00b3307d2c428e22719fbcd47b4a253d5941541abd0f180220c90152a866",
    (True, True): "3213592334fbd221b950de221fb73687623dcc1d54744e1174f1755e069fc261",
}


@pytest.mark.parametrize("rslora, fifo", list(GOLDEN))
def test_merge_bytes_are_the_recorded_ones(rslora: bool, fifo: bool) -> None:
    """A portable input (no float RNG) and the sha256 of its merge: the test a different CPU
    runs to prove it merges like this one."""
    module = _module(96, 80, 16, seed=2024, rslora=rslora, fifo=fifo)
    weight = _portable_floats(99, module.shape, range(-7, 0))
    merged = LoraAdapter(modules={"w": module}).merged("w", weight)
    np.testing.assert_array_equal(_bits(merged), _bits(_reference_merge(module, weight)))
    assert hashlib.sha256(merged.tobytes()).hexdigest() == GOLDEN[(rslora, fifo)]
