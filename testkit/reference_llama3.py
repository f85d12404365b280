"""Llama 3's RoPE scaling through our converter and llama.cpp's reference converter.

    python -m testkit.reference_llama3 [--dtype f32] [--work .cache/reference]

No Llama-3 checkpoint is reachable offline, so this builds one with the shape that matters: a
2-layer random Llama with Llama 3.2 1B's head (64) and RoPE scaling (theta 5e5, factor 32,
low/high frequency factors 1/4, original context 8192), carrying SmolLM2's real tokenizer
(the reference converter refuses a BPE pre-tokenizer it does not recognise, so a tokenizer
trained here would stop it before the weights). Then ``benchmarks.converter_reference`` runs
both converters on it and compares every tensor, ``rope_freqs.weight`` included, and every
metadata key. Last, the reference's own GGUF goes back to HF through ours: the RoPE parameters
recovered from its ``rope_freqs.weight`` must be the ones the checkpoint was built with (the
report's ``rope_back_from_reference``). Needs the [train] extra.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks import converter_reference
from converter.to_hf import gguf_to_hf
from edge_runtime.config import foggen_home
from edge_runtime.models import resolve_model

LLAMA_3_2_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500_000.0,
    "factor": 32.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def tokenizer_source(work: Path) -> Path:
    """SmolLM2's HF checkpoint (its GGUF converted back), made once in the work folder."""
    checkpoint = work / "smollm2-135m-hf"
    if not checkpoint.exists():
        gguf_to_hf(resolve_model("smollm2-135m", home=foggen_home()).path, checkpoint)
    return checkpoint


def build(directory: Path, tokenizer_from: Path) -> Path:
    import torch
    import transformers

    directory.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if (tokenizer_from / name).exists():
            shutil.copy(tokenizer_from / name, directory / name)
    source = transformers.AutoConfig.from_pretrained(tokenizer_from)
    config = transformers.LlamaConfig(
        vocab_size=source.vocab_size, hidden_size=256, intermediate_size=512,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
        max_position_embeddings=131_072, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=source.bos_token_id, eos_token_id=source.eos_token_id,
        pad_token_id=source.pad_token_id, rope_parameters=dict(LLAMA_3_2_ROPE),
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.to(torch.bfloat16).save_pretrained(directory)
    return directory


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    parser.add_argument("--work", default=".cache/reference", help="where checkpoints go")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    checkpoint = work / "tiny-llama3-hf"
    if not checkpoint.exists():
        build(checkpoint, tokenizer_source(work))
    out = Path(f"reports/converter-reference-tiny-llama3-{args.dtype}.json")
    report = converter_reference.main(
        ["--checkpoint", str(checkpoint), "--dtype", args.dtype, "--work", str(work)]
        + ["--out", str(out)]
    )
    back = work / f"tiny-llama3-back-{args.dtype}"
    shutil.rmtree(back, ignore_errors=True)
    gguf_to_hf(report["outputs"]["reference"], back, progress=False)
    recovered = json.loads((back / "config.json").read_text())["rope_parameters"]
    report["rope_back_from_reference"] = {
        "recovered": recovered,
        "equal_to_built": recovered == LLAMA_3_2_ROPE,
    }
    out.write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report["rope_back_from_reference"], indent=1))
    if recovered != LLAMA_3_2_ROPE:
        raise SystemExit(f"RoPE parameters not recovered: {recovered} != {LLAMA_3_2_ROPE}")
    return report


if __name__ == "__main__":
    main()
