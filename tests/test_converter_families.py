"""The converter beyond Gemma: tiny random Qwen2 and Llama checkpoints, each with a real small
BPE tokenizer, through export (parity with transformers in llama.cpp), GGUF -> HF -> GGUF (bit
for bit), every output dtype, and the refusals that keep wrong inputs out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from converter.bpe_vocab import LLAMA3_SPLIT, QWEN2_SPLIT, pre_tokenizer_json
from converter.errors import UnsupportedModelError
from converter.gguf_export import OutType, export_gguf
from converter.gguf_reader import GGUFReader
from converter.to_hf import gguf_to_hf, read_fields
from converter.to_hf_transformers import fix_pre_tokenizer
from converter.verify import verify
from edge_runtime.engine import EngineSettings, LlamaEngine
from edge_runtime.gguf_check import inspect_gguf
from edge_runtime.mcq import stratified
from edge_runtime.prompt import PromptTokens
from edge_runtime.question import Question
from tests.threads import TEST_THREADS

FAMILIES = ["qwen2", "llama"]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from testkit.tiny_models import tiny_bpe_checkpoint

    return tiny_bpe_checkpoint(
        tmp_path_factory.mktemp("bpe") / f"tiny-{request.param}", request.param
    )


@pytest.fixture(scope="module")
def tiny_f32(tiny: Path) -> Path:
    return export_gguf(tiny, tiny.parent / "tiny-f32.gguf", out_type=OutType.F32, progress=False)


def test_export_matches_transformers_in_llama_cpp(tiny: Path, tiny_f32: Path) -> None:
    report = verify(tiny, tiny_f32, stratified(1), threads=TEST_THREADS, progress=False)
    assert report.token_id_mismatches == [], "llama.cpp and transformers tokenize differently"
    assert report.top1_agreement >= 0.99, report.to_dict()
    # measured 8e-4 (qwen2) / 1e-4 (llama) on random tiny weights: a wrong permutation, bias
    # or norm gives differences of order 1
    assert report.max_abs_logit_diff < 0.02, report.to_dict()
    assert report.letter_agreement == 1.0


def test_family_keys_and_tokenizer(tiny: Path, tiny_f32: Path) -> None:
    config = json.loads((tiny / "config.json").read_text())
    info = inspect_gguf(tiny_f32)
    arch = config["model_type"]
    meta = info.metadata
    assert meta["general.architecture"] == arch
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.pre"] == ("qwen2" if arch == "qwen2" else "smollm")
    assert meta[f"{arch}.attention.head_count_kv"] == 2
    fields = read_fields(GGUFReader(tiny_f32))
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    assert len(tokens) == config["vocab_size"] and len(fields["tokenizer.ggml.merges"]) > 100
    assert tokens[-1] == f"[PAD{len(tokens) - 1}]" and types[-1] == gguf.TokenType.UNUSED
    assert types[tokens.index("<|im_end|>")] == gguf.TokenType.CONTROL
    names = {t.name for t in GGUFReader(tiny_f32).tensors}
    assert ("blk.0.attn_q.bias" in names) == (arch == "qwen2")  # Qwen2's q/k/v biases
    assert ("output.weight" in names) == (not config["tie_word_embeddings"])


def test_prompt_follows_the_chatml_template_and_digits_split(tiny_f32: Path) -> None:
    engine = LlamaEngine(tiny_f32, EngineSettings(n_ctx=512, n_threads=TEST_THREADS, n_batch=64))
    try:
        question = Question("Which is 12345?", ("12345", "54321"))
        ids = PromptTokens(engine)(question)
        text = b"".join(engine.piece(i) for i in ids).decode()
        assert "<|im_start|>system" in text and text.endswith("<|im_start|>assistant\n")
        if engine.metadata("tokenizer.ggml.pre") == "smollm":  # digits one by one
            assert len(engine.tokenize("12345", special=False)) == 5
    finally:
        engine.close()


def test_gguf_to_hf_and_back_is_bit_equal(tiny_f32: Path, tmp_path: Path) -> None:
    hf = gguf_to_hf(tiny_f32, tmp_path / "hf", progress=False)
    back = export_gguf(hf, tmp_path / "back.gguf", out_type=OutType.F32, progress=False)
    a, b = GGUFReader(tiny_f32), GGUFReader(back)
    ours = {t.name: t for t in b.tensors}
    assert {t.name for t in a.tensors} == set(ours)
    for tensor in a.tensors:  # bf16 weights: F32 -> bf16 -> F32 is exact
        assert np.array_equal(tensor.data, ours[tensor.name].data), tensor.name
    fa, fb = read_fields(a), read_fields(b)
    differ = {k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k)}
    assert differ == {"general.name"}, differ


@pytest.mark.parametrize("out_type", [OutType.F16, OutType.BF16, OutType.Q8_0])
def test_output_dtypes_load_and_run(tiny: Path, tmp_path: Path, out_type: OutType) -> None:
    path = export_gguf(tiny, tmp_path / "t.gguf", out_type=out_type, progress=False)
    assert set(inspect_gguf(path).tensor_types) <= {out_type.value.upper(), "F32", "F16"}
    engine = LlamaEngine(path, EngineSettings(n_ctx=256, n_threads=TEST_THREADS, n_batch=64))
    try:
        logits = engine.logits_after(engine.tokenize("Hello world 42", special=False))
        assert logits.std() > 0 and np.isfinite(logits).all()
    finally:
        engine.close()


def _variant(tiny: Path, tmp_path: Path, **changes: object) -> Path:
    copy = Path(shutil.copytree(tiny, tmp_path / "variant"))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, **changes}))
    return copy


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"architectures": ["MistralForCausalLM"]}, "MistralForCausalLM.*supported: Gemma3"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ({"rope_parameters": None, "rope_scaling": {"type": "yarn", "factor": 4.0}}, "yarn"),
        ({"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}, "RoPE scaling 'dynamic'"),
        ({"rope_parameters": {"rope_type": "llama3", "factor": 8.0}}, "llama3 RoPE scaling"),
    ],
)
def test_wrong_configs_are_refused(
    tiny: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(UnsupportedModelError, match=message):
        export_gguf(_variant(tiny, tmp_path, **changes), tmp_path / "x.gguf", progress=False)
    assert not (tmp_path / "x.gguf").exists()


def test_unknown_pre_tokenizer_is_refused(tiny: Path, tmp_path: Path) -> None:
    copy = _variant(tiny, tmp_path)
    data = json.loads((copy / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Whitespace"}
    (copy / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(UnsupportedModelError, match="pre-tokenizer.*known: qwen2"):
        export_gguf(copy, tmp_path / "x.gguf", progress=False)


def test_pre_tokenizer_table_matches_transformers() -> None:
    """The regexes are facts of the real tokenizers: transformers spells them the same."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    assert GGUF_PRE_TOKENIZER_SPLITS["qwen2"] == QWEN2_SPLIT
    assert GGUF_PRE_TOKENIZER_SPLITS["llama-bpe"] == LLAMA3_SPLIT
    plain = {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    assert fix_pre_tokenizer(plain, "smollm")  # what transformers writes for SmolLM2
    assert plain["pre_tokenizer"] == pre_tokenizer_json("smollm")
    assert not fix_pre_tokenizer(plain, "smollm")
