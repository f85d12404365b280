"""What one bench run measures: a frozen, validated description built once from the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.data import DOMAINS, SPLITS
from cloud_client.config import CloudConfig

DEFAULT_PER_DOMAIN = 50  # the default run's accuracy subset: 350 questions, ~2 min of edge passes
SIGNALS = ("bucket", "bucket_expectation", "letter", "calibrated")  # routing scores a bench reads
SMALL_PER_DOMAIN = 3  # grammar, free and transformers: long law/medical/Kazakh prompts are slow


class BenchConfigError(ValueError):
    """A bench setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[str | None, ...] = (None,)  # None: the usual selection; "embedded"; a GGUF ref
    domains: tuple[str, ...] = DOMAINS
    per_domain: int | None = DEFAULT_PER_DOMAIN  # None: every eval question (--full)
    small_per_domain: int = SMALL_PER_DOMAIN
    split: str = "eval"  # calib: choose taus without touching eval
    tau: float = 0.5
    signal: str = "bucket"  # the card table's routing signal (tau is on its scale)
    out: Path = Path("reports/bench")
    cloud: CloudConfig | None = None  # None or no URL: the simulated cloud (labelled)
    hf_checkpoint: Path | None = None  # the transformers baseline's checkpoint
    threads: int = 2
    cold_start: bool = True
    plots: bool = True
    progress: bool = True

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
