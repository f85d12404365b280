"""The training and chain settings: frozen dataclasses with no heavy imports.

``foggen train`` / ``foggen chain`` build their flags from these (each field's help and default),
so the CLI's parser can be made without importing torch, the converter's steps or the runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from confkit import setting

DTYPES = ("auto", "bf16", "fp32")
HEADS = ("targets", "full")


@dataclass(frozen=True)
class TrainConfig:
    """LoRA SFT settings; the defaults are the FogGen card's recipe."""

    r: int = setting(16, "LoRA rank")
    alpha: int = setting(32, "LoRA alpha (scale alpha / r)")
    dropout: float = setting(0.0, "LoRA dropout")
    lr: float = setting(5e-5, "learning rate (AdamW, constant)")
    epochs: int = setting(2, "passes over the examples")
    batch_size: int = setting(4, "examples per step (at most; see --max-batch-tokens)")
    max_tokens: int = setting(1024, "longer examples are dropped and counted, never truncated")
    seed: int = setting(0, "seed of the LoRA init, shuffling and dropout")
    dtype: str = setting(
        "auto", "auto | bf16 | fp32 (auto: bf16 where the CPU has AVX512-BF16/AMX)"
    )
    head: str = setting(
        "targets", "targets: LM head only where the loss is taken; full: everywhere"
    )
    bucketed: bool = setting(True, "batches of similar length")
    max_batch_tokens: int = setting(
        2048, "padded tokens per batch (long examples: smaller batches)"
    )
    threads: int = setting(0, "torch intra-op threads (0: torch's default)")
    max_steps: int = setting(0, "stop after this many steps (0: all epochs; for measurements)")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ValueError("LoRA r must be >= 1 and alpha > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1 or self.max_tokens < 8:
            raise ValueError("lr > 0, epochs >= 1, batch_size >= 1 and max_tokens >= 8 please")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}")
        if self.threads < 0 or self.max_steps < 0:
            raise ValueError("threads and max_steps must be >= 0")


@dataclass(frozen=True)
class ChainBenchConfig:
    """What ``foggen bench`` runs on each round's GGUF (eval split, simulated cloud)."""

    per_domain: int = setting(20, "eval questions per domain in fast mode (routing, calibration)")
    small_per_domain: int = setting(3, "per domain in floor/fast/grammar/free mode (compliance)")
    tau: float = setting(0.5, "routing threshold of the card table")
    threads: int = setting(2, "llama.cpp threads of the bench")

    def __post_init__(self) -> None:
        if self.per_domain < 1 or self.small_per_domain < 0 or self.threads < 1:
            raise ValueError("per_domain >= 1, small_per_domain >= 0 and threads >= 1 please")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError("tau must be in [0, 1]")


@dataclass(frozen=True)
class ChainConfig:
    """One chain. ``base``: an HF checkpoint folder, or None for the embedded GGUF."""

    rounds: int = setting(1, "rounds to have run (re-run with more to continue a chain)")
    buffer: int = setting(1800, "questions per round (train split only; calib and eval never)")
    n_samples: int = setting(8, "self-samples per question (the label: fraction correct)")
    temperature: float = setting(0.7, "sampling temperature")
    group: int = setting(8, "questions per parallel llama.cpp call (endpoint: requests in flight)")
    seed: int = setting(0, "base seed (round r uses seed + r)")
    threads: int = setting(2, "llama.cpp threads for sampling and quantizing")
    base: str | None = setting(None, "start checkpoint: HF folder or .gguf (default: embedded)")
    teacher: str | None = setting(
        None, "sibling distillation: round 0 labelled by a teacher's samples - a model the edge "
        "runtime runs (a name such as qwen2.5-coder-1.5b, chain:N or a .gguf) or an "
        "OpenAI-compatible base URL http(s)://host/v1 (cloud client; key from "
        "FOGGEN_TEACHER_API_KEY)",
    )  # fmt: skip
    teacher_model: str | None = setting(None, "the endpoint's model (default: the first listed)")
    teacher_max_tokens: int = setting(512, "max_tokens of each endpoint reply")
    train: TrainConfig = field(default_factory=TrainConfig)
    bench: ChainBenchConfig = field(default_factory=ChainBenchConfig)

    def __post_init__(self) -> None:
        if min(self.rounds, self.buffer, self.n_samples, self.group, self.teacher_max_tokens) < 1:
            raise ValueError("rounds, buffer, n_samples, group and teacher_max_tokens must be >= 1")
        if not self.temperature > 0:
            raise ValueError("temperature must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChainConfig:
        return cls(
            **{k: v for k, v in data.items() if k not in ("train", "bench")},
            train=TrainConfig(**data["train"]),
            bench=ChainBenchConfig(**data["bench"]),
        )
