"""What one bench run measures: a frozen, validated description; ``foggen bench``'s flags are
generated from its fields (their help, defaults and flag names)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.errors import BenchConfigError
from cloud_client.config import CloudConfig
from confkit import setting
from edge_runtime.mcq import DOMAINS, SPLITS

DEFAULT_PER_DOMAIN = 50  # the default run's accuracy subset: 350 questions, ~2 min of edge passes
# routing scores a bench reads; calibrated: p_correct from the output features (calibrator v1),
# hidden: from those and the hidden state (v2)
SIGNALS = ("bucket", "bucket_expectation", "letter", "calibrated", "hidden")
SMALL_PER_DOMAIN = 3  # grammar, free and transformers: long law/medical/Kazakh prompts are slow

__all__ = ["BenchConfig", "BenchConfigError", "DEFAULT_PER_DOMAIN", "SIGNALS"]


def _model(text: str) -> str | None:
    return text


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _all_cores() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[str | None, ...] = setting(
        (None,), "GGUF path, hf://..., or 'embedded'; repeat to compare (default: the usual "
        "selection)", flag="--model", parse=_model, repeat=True, metavar="GGUF",
    )  # fmt: skip
    domains: tuple[str, ...] = setting(DOMAINS, "comma-separated domains", parse=_names)
    per_domain: int | None = setting(
        DEFAULT_PER_DOMAIN, "questions per domain", flag="--limit", parse=int
    )  # None: every question of the split (--full)
    small_per_domain: int = setting(
        SMALL_PER_DOMAIN, "questions per domain for grammar/free/transformers", flag="--small"
    )
    calib_per_domain: int = setting(
        0, "calib questions per domain: fit the calibrator and choose the operating points' "
        "taus there, then apply them to the measured split (0: off)", flag="--calib", parse=int,
    )  # fmt: skip
    split: str = setting(
        "eval", "bundled split (eval; calib to choose taus without touching eval)", choices=SPLITS
    )
    tau: float = setting(0.5, "tau of the card table")
    signal: str = setting(
        "bucket", "the card table's routing signal (bucket: the card's)", choices=SIGNALS
    )
    out: Path = setting(Path("reports/bench"), "output folder", parse=Path)
    cloud: CloudConfig | None = None  # None or no URL: the simulated cloud (labelled)
    hf_checkpoint: Path | None = setting(
        None, "HF checkpoint for the transformers bf16 baseline (needs [train])", parse=Path
    )
    threads: int = setting(help="CPU threads (default: all)", default_factory=_all_cores, parse=int)
    cold_start: bool = setting(True, "skip the fresh-process runs", flag="--no-cold-start",
                               switch=True)  # fmt: skip
    plots: bool = setting(True, "skip the PNG plots", flag="--no-plots", switch=True)
    compare_walks: bool = setting(
        False, "also run fast mode without its guessed bucket (a decode per choice point) and "
        "report the letters and AUROCs that move", flag="--compare-walks", switch=True,
    )  # fmt: skip
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self) -> None:
        unknown = [d for d in self.domains if d not in DOMAINS]
        if unknown or not self.domains:
            raise BenchConfigError(
                f"unknown domain(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(DOMAINS)}"
            )
        if self.split not in SPLITS:
            raise BenchConfigError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        if self.per_domain is not None and self.per_domain <= 0:
            raise BenchConfigError("--limit must be a positive number of questions per domain")
        if self.calib_per_domain < 0:
            raise BenchConfigError("--calib must be >= 0")
        if self.calib_per_domain and self.split == "calib":
            raise BenchConfigError("--calib chooses taus on calib: measure another --split")
        if self.small_per_domain < 0:
            raise BenchConfigError("--small must be >= 0")
        if self.signal not in SIGNALS:
            raise BenchConfigError(f"--signal must be one of {', '.join(SIGNALS)}")
        if not 0.0 <= self.tau <= 1.0:
            raise BenchConfigError(f"--tau must be in [0, 1], got {self.tau}")
        if self.threads <= 0:
            raise BenchConfigError("--threads must be positive")
        if not self.models:
            raise BenchConfigError("no model to bench")
        if self.hf_checkpoint is not None and not (self.hf_checkpoint / "config.json").is_file():
            raise BenchConfigError(
                f"--hf-checkpoint {self.hf_checkpoint}: no config.json there; make one with "
                "'foggen convert --from-gguf <gguf> --to-hf DIR'"
            )
