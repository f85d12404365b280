"""A thin PEFT LoRA SFT script for the FogGen schema (the [train] extra, imported lazily).

The loss is taken only on the ~12 target tokens of each example, and the LM head (262,144 wide)
runs only there: the decoder gives hidden states, the positions that predict a target token are
gathered, and ``lm_head`` (plus Gemma's final logit softcapping, when the config sets one)
runs on those rows alone. Batches group examples of similar length. bf16 where the CPU has
native bf16 (AVX512-BF16 / AMX), else fp32; the LoRA weights themselves stay fp32 (peft's
autocast), and the adapter is saved in 16-bit.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.errors import MissingExtraError, OutputError
from converter.safetensors_io import SafetensorsFile, write_safetensors
from converter.sft_data import (
    Encoded,
    chat_format_for,
    encode_all,
    length_batches,
    read_examples,
)
from converter.train_config import DTYPES, HEADS, TrainConfig  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ADAPTER_FILE = "adapter_model.safetensors"


@dataclass
class TrainReport:
    examples: int = 0
    dropped_over_length: int = 0
    steps: int = 0
    tokens: int = 0
    target_tokens: int = 0
    dtype: str = ""
    device: str = ""
    seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        steps = self.step_seconds
        data["step_seconds"] = {
            "mean": round(float(np.mean(steps)), 3) if steps else None,
            "median": round(float(np.median(steps)), 3) if steps else None,
        }
        data["loss_first"] = round(self.losses[0], 4) if self.losses else None
        data["loss_last"] = round(float(np.mean(self.losses[-10:])), 4) if self.losses else None
        del data["losses"]
        return data


def _torch() -> Any:
    try:
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("torch, transformers and peft", "train") from exc
    return torch


def cpu_has_bf16() -> bool:
    """Native bf16 matmuls on this CPU (AVX512-BF16 or AMX); reading /proc/cpuinfo on Linux."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(config: TrainConfig, device: str) -> str:
    if config.dtype != "auto":
        return config.dtype
    if device == "cuda":
        return "bf16"
    return "bf16" if device == "cpu" and cpu_has_bf16() else "fp32"


def pick_device() -> str:
    torch = _torch()
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_for_training(checkpoint: str | Path, config: TrainConfig, device: str) -> tuple[Any, Any]:
    """(peft model with a fresh LoRA on all linear layers, tokenizer)."""
    torch = _torch()
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if pick_dtype(config, device) == "bf16" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForCausalLM.from_pretrained(
        str(checkpoint), dtype=dtype, attn_implementation="sdpa"
    ).to(device)  # type: ignore[arg-type]  # transformers' stubs: .to is a wrapped method
    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), tokenizer


def collate(batch: Sequence[Encoded], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Right-padded ids and mask; (row, position) of every scored prediction and its target."""
    torch = _torch()
    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows, cols, targets = [], [], []
    for row, example in enumerate(batch):
        ids[row, : len(example.ids)] = torch.tensor(example.ids)
        mask[row, : len(example.ids)] = 1
        for position in example.target_positions:
            rows.append(row)
            cols.append(position)
            targets.append(example.ids[position + 1])
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "rows": torch.tensor(rows, device=device),
        "cols": torch.tensor(cols, device=device),
        "targets": torch.tensor(targets, device=device),
    }


def target_loss(model: Any, batch: dict[str, torch.Tensor], *, head: str = "targets") -> Any:
    """Mean cross-entropy over the target tokens only."""
    torch = _torch()
    causal = model.get_base_model()
    if head == "full":  # the reference path: logits at every position, masked labels
        logits = causal(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        scored = logits[batch["rows"], batch["cols"]]
    else:
        hidden = causal.get_decoder()(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        scored = causal.get_output_embeddings()(hidden[batch["rows"], batch["cols"]])
        cap = getattr(causal.config, "final_logit_softcapping", None)
        if cap:  # as Gemma3ForCausalLM.forward does after lm_head
            scored = torch.tanh(scored / cap) * cap
    return torch.nn.functional.cross_entropy(scored.float(), batch["targets"])


def _batches(items: Sequence[Encoded], config: TrainConfig, epoch: int) -> Iterator[list[Encoded]]:
    return length_batches(
        items,
        batch_size=config.batch_size,
        seed=config.seed,
        epoch=epoch,
        bucketed=config.bucketed,
        max_batch_tokens=config.max_batch_tokens,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train(
    checkpoint: str | Path,
    examples_path: str | Path,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainReport:
    """Train a LoRA adapter on ``examples_path`` and save it (16-bit) in ``out_dir``."""
    config = config or TrainConfig()
    torch = _torch()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = pick_device()
    model, tokenizer = load_for_training(checkpoint, config, device)
    chat = chat_format_for(tokenizer, architecture=model.config.model_type)
    data = encode_all(tokenizer, read_examples(examples_path), config.max_tokens, chat=chat)
    report = TrainReport(
        examples=len(data.items),
        dropped_over_length=data.dropped,
        dtype=pick_dtype(config, device),
        device=device,
    )
    if data.dropped:
        log.warning("%d examples longer than %d tokens dropped", data.dropped, config.max_tokens)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    steps_per_epoch = sum(1 for _ in _batches(data.items, config, 0))
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    model.train()
    started = time.perf_counter()
    for epoch in range(config.epochs):
        for batch in _batches(data.items, config, epoch):
            if report.steps >= total:
                break
            t0 = time.perf_counter()
            tensors = collate(batch, tokenizer.pad_token_id or 0, device)
            loss = target_loss(model, tensors, head=config.head)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            report.step_seconds.append(time.perf_counter() - t0)
            report.losses.append(float(loss.detach()))
            report.steps += 1
            report.tokens += int(tensors["attention_mask"].sum())
            report.target_tokens += len(tensors["targets"])
            if on_step is not None:
                on_step(report.steps, total, report.losses[-1])
    report.seconds = time.perf_counter() - started
    report.peak_rss_mb = peak_rss_mb()
    save_adapter(model, Path(out_dir), report)
    return report


def save_adapter(model: Any, out_dir: Path, report: TrainReport) -> None:
    """PEFT's folder, with the weights rewritten in bf16 (≈ 8 MB for r = 16 on 270M)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out_dir), safe_serialization=True)
        to_16bit(out_dir / ADAPTER_FILE)
        (out_dir / "train_report.json").write_text(json.dumps(report.to_dict(), indent=1))
    except OSError as exc:
        raise OutputError(f"cannot write the adapter to {out_dir}: {exc}") from exc


def to_16bit(path: Path) -> None:
    file = SafetensorsFile(path)
    tensors = [(name, file.read(name)) for name in sorted(file.tensors)]
    write_safetensors(path, tensors, dtype="BF16")
