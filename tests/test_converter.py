"""HF checkpoint -> GGUF on a tiny random Gemma-3: parity with transformers, dtypes, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from converter.errors import (
    CheckpointFormatError,
    CheckpointNotFoundError,
    HubUnavailableError,
    OutputError,
    UnsupportedModelError,
)
from converter.gguf_export import OutType, export_gguf
from converter.verify import verify
from edge_runtime.gguf_check import inspect_gguf
from edge_runtime.mcq import stratified
from tests.threads import TEST_THREADS


@pytest.fixture(scope="module")
def tiny_f32(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_gguf(
        tiny_checkpoint,
        tmp_path_factory.mktemp("t") / "tiny.gguf",
        out_type=OutType.F32,
        progress=False,
    )


@pytest.mark.slow
def test_tiny_f32_matches_transformers(tiny_checkpoint: Path, tiny_f32: Path) -> None:
    report = verify(tiny_checkpoint, tiny_f32, stratified(1), threads=TEST_THREADS, progress=False)
    assert report.token_id_mismatches == []
    assert report.top1_agreement >= 0.99, report.to_dict()
    assert report.max_abs_logit_diff < 0.05, report.to_dict()  # random tiny weights: tight


@pytest.mark.parametrize(
    "out_type, types",
    [
        (OutType.F16, {"F16", "F32"}),
        (OutType.BF16, {"BF16", "F32"}),
        (OutType.Q8_0, {"Q8_0", "F32"}),
    ],
)
def test_output_dtypes(
    tiny_checkpoint: Path, tmp_path: Path, out_type: OutType, types: set[str]
) -> None:
    path = export_gguf(tiny_checkpoint, tmp_path / "t.gguf", out_type=out_type, progress=False)
    info = inspect_gguf(path)
    assert set(info.tensor_types) == types
    assert _loads_and_answers(path), "llama.cpp must load and run the file"
    assert info.tensor_types["F32"] == 6 * 6 + 1  # every norm stays F32 (6 per layer + output)
    assert info.metadata["gemma3.attention.sliding_window"] == 16
    assert info.metadata["gemma3.rope.freq_base_swa"] == 10000.0
    assert info.metadata["tokenizer.ggml.add_space_prefix"] is False


def _loads_and_answers(path: Path) -> bool:
    from edge_runtime.engine import EngineSettings, LlamaEngine

    engine = LlamaEngine(path, EngineSettings(n_ctx=256, n_threads=TEST_THREADS, n_batch=64))
    try:
        logits = engine.logits_after([engine.bos, *engine.tokenize("Hello world")])
        return bool(logits.shape == (262144,) and logits.std() > 0)
    finally:
        engine.close()


@pytest.mark.parametrize("spelling", ["Q8_0", "q8_0", "Bf16", "F32"])
def test_dtype_is_case_insensitive(spelling: str) -> None:
    assert OutType.parse(spelling).value == spelling.lower()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_bad_checkpoints_give_clear_errors_and_leave_nothing(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cases = []
    no_config = _copy(tiny_checkpoint, tmp_path / "no-config")
    (no_config / "config.json").unlink()
    cases.append((no_config, CheckpointNotFoundError, "config.json is missing"))
    no_weights = _copy(tiny_checkpoint, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    cases.append((no_weights, CheckpointNotFoundError, "no \\*.safetensors"))
    truncated = _copy(tiny_checkpoint, tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    cases.append((truncated, CheckpointFormatError, "truncated"))
    llama = _copy(tiny_checkpoint, tmp_path / "llama")
    config = json.loads((llama / "config.json").read_text())
    (llama / "config.json").write_text(
        json.dumps({**config, "architectures": ["LlamaForCausalLM"]})
    )
    cases.append((llama, UnsupportedModelError, "neither llama nor qwen2"))
    no_tok = _copy(tiny_checkpoint, tmp_path / "no-tokenizer")
    (no_tok / "tokenizer.model").unlink()
    cases.append((no_tok, CheckpointNotFoundError, "tokenizer"))
    cases.append((tmp_path / "nowhere", CheckpointNotFoundError, "neither a folder nor a hub id"))
    for source, error, message in cases:
        with pytest.raises(error, match=message):
            export_gguf(source, out / "x.gguf", progress=False)
        assert list(out.iterdir()) == [], f"{source.name}: a partial file was left behind"


def test_integer_weights_are_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from converter.safetensors_io import SafetensorsFile

    broken = _copy(tiny_checkpoint, tmp_path / "int")
    file = SafetensorsFile(broken / "model.safetensors")
    raw = (broken / "model.safetensors").read_bytes()
    name = "model.layers.0.mlp.up_proj.weight"
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    header[name]["dtype"] = "I16"  # same byte size, wrong meaning
    blob = json.dumps(header, separators=(",", ":")).encode().ljust(header_len)
    assert len(blob) == header_len
    (broken / "model.safetensors").write_bytes(raw[:8] + blob + raw[8 + header_len :])
    assert file.tensors[name].dtype == "BF16"
    with pytest.raises(CheckpointFormatError, match="I16; weights must be floats"):
        export_gguf(broken, tmp_path / "x.gguf", progress=False)
    assert not (tmp_path / "x.gguf").exists()


def test_unwritable_output(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        export_gguf(tiny_checkpoint, tmp_path / "missing" / "x.gguf", progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError):
        export_gguf(tiny_checkpoint, blocker / "x.gguf", progress=False)


def test_hub_id_offline_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(HubUnavailableError, match="could not download issai/foggen-gemma3-270m"):
        export_gguf("issai/foggen-gemma3-270m", tmp_path / "x.gguf", progress=False)


def test_cli_convert_and_quantize(
    tiny_checkpoint: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    foggen = [sys.executable, "-m", "foggen"]
    out = subprocess.run(
        foggen
        + ["convert", str(tiny_checkpoint), "--out", str(tmp_path / "t.gguf"), "--dtype", "F32"],
        env=cli_env,
        capture_output=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tensor_types"] == {"F32": 6 * 13 + 2}  # 13 per layer + 2
    quant = subprocess.run(
        foggen + ["quantize", str(tmp_path / "t.gguf"), str(tmp_path / "q.gguf"), "--type", "q8_0"],
        env=cli_env,
        capture_output=True,
        timeout=600,
    )
    assert quant.returncode == 0, quant.stderr
    report = json.loads(quant.stdout)
    assert report["type"] == "Q8_0" and report["size_bytes"] < report["source_size_bytes"]
    again = subprocess.run(
        foggen
        + ["quantize", str(tmp_path / "q.gguf"), str(tmp_path / "q2.gguf"), "--type", "Q4_K_M"],
        env=cli_env,
        capture_output=True,
    )
    assert again.returncode == 3 and b"already MOSTLY_Q8_0" in again.stderr
    bad = subprocess.run(
        foggen
        + ["convert", str(tiny_checkpoint), "--out", str(tmp_path / "x.gguf"), "--dtype", "q4"],
        env=cli_env,
        capture_output=True,
    )
    assert bad.returncode == 2 and b"--dtype must be one of" in bad.stderr
