"""Tiny random checkpoints of the converter's BPE families, each with a real small tokenizer.

The tokenizer is a byte-level BPE trained here (``tokenizers``) on the bundled questions, with
the pre-tokenizer of the family's real models (Qwen2's split regex; SmolLM2's digit splitting)
and a ChatML template, so llama.cpp and transformers both tokenize and template it for real.
Needs the [train] extra (torch, transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from converter.bpe_vocab import pre_tokenizer_json
from edge_runtime.mcq import stratified
from edge_runtime.prompt import SYSTEM_PROMPT

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# family -> (pre-tokenizer as llama.cpp names it, transformers config class, BOS added)
FAMILIES = {
    "qwen2": ("qwen2", "Qwen2Config", False),
    "llama": ("smollm", "LlamaConfig", True),
}


def _corpus() -> list[str]:
    texts = [SYSTEM_PROMPT, "Confidence: 0.25\nFinal answer: B", "Final answer: A C D E"]
    for q in stratified(60, split="train"):
        texts.append(q.text)
        texts.extend(q.choices)
    return texts


def write_bpe_tokenizer(directory: Path, pre: str, *, add_bos: bool, vocab_size: int = 700) -> int:
    """tokenizer.json + tokenizer_config.json in ``directory``; returns the vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, processors, trainers
    from tokenizers.pre_tokenizers import ByteLevel

    data = json.loads(Tokenizer(models.BPE()).to_str())
    data["pre_tokenizer"] = pre_tokenizer_json(pre)  # exactly the form the converter reads
    tokenizer = Tokenizer.from_str(json.dumps(data))
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), initial_alphabet=ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    if add_bos:
        bos = (SPECIALS[0], tokenizer.token_to_id(SPECIALS[0]))
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{SPECIALS[0]} $A",
            pair=f"{SPECIALS[0]} $A {SPECIALS[0]}:1 $B:1",  # as Llama 3's tokenizer.json
            special_tokens=[bos],
        )
    tokenizer.save(str(directory / "tokenizer.json"))
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": SPECIALS[0],
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "model_max_length": 4096,
        "chat_template": CHATML,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return tokenizer.get_vocab_size()


def tiny_bpe_checkpoint(
    directory: Path, family: str, *, seed: int = 0, rope: dict[str, Any] | None = None
) -> Path:
    """A 2-layer random ``family`` model ("qwen2" or "llama") saved in bf16 with its tokenizer.
    Qwen2 is tied (like Qwen2.5-1.5B); the Llama is untied, so lm_head is exported too.
    ``rope``: RoPE scaling parameters (e.g. Llama 3's), besides the family's theta."""
    import torch
    import transformers

    pre, config_class, add_bos = FAMILIES[family]
    directory.mkdir(parents=True)
    n_tokens = write_bpe_tokenizer(directory, pre, add_bos=add_bos)
    config = getattr(transformers, config_class)(
        vocab_size=(n_tokens + 63) // 64 * 64,  # padded like real models: [PADn] rows in GGUF
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6,
        rope_theta=1_000_000.0 if family == "qwen2" else 100_000.0,
        tie_word_embeddings=family == "qwen2", bos_token_id=0, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    if rope is not None:
        config.rope_parameters = {**config.rope_parameters, **rope}
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.08)
    model.to(torch.bfloat16).save_pretrained(directory)
    return directory


def make_adapter(
    base: Path, out: Path, *, r: int = 4, lora_alpha: int = 8, **options: Any
) -> dict[str, np.ndarray]:
    """A real peft adapter with non-zero B; returns peft's merged weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, **options))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    peft_model.save_pretrained(str(out))
    merged = peft_model.merge_and_unload()
    return {k: v.float().numpy() for k, v in merged.state_dict().items()}
