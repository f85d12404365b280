"""Runtime configuration: one frozen dataclass, built once from flags > environment > defaults.

Each field (``confkit.setting``) names its environment variable, help text and parser, so the
``foggen`` flags are generated from here and defaults and help never drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from confkit import build_config, parse_bool, positive_int, setting
from edge_runtime.errors import ConfigError
from edge_runtime.routing.rule import Route, Signal, validate_tau
from edge_runtime.schema import BUCKETS

MAX_NEW_TOKENS = 64
CARD_SIGNAL, CARD_TAU = Signal.BUCKET, 0.5  # the card's rule: what no profile or choice leaves
AUTO_PROFILE = "auto"
NO_CALIBRATOR = "none"  # --calibrator none: no p_correct, even if the cache holds a calibrator
GUESS_AUTO, NO_GUESS = "auto", "none"
MAX_ORDERS = 4  # thorough mode: at most one order per rotation of four options


class Mode(str, Enum):
    FAST = "fast"  # schema-aware greedy: logits read only at the choice points
    GRAMMAR = "grammar"  # llama.cpp GBNF-constrained greedy decoding (the card's reference)
    FREE = "free"  # unconstrained greedy generation, then parsing (format-compliance probe)


@dataclass(frozen=True)
class RuntimeConfig:
    model: str | None = setting(
        None,
        "GGUF to run: a model name ('foggen model list'), chain:N, a path, "
        "hf://owner/repo/file.gguf[@rev], or empty for the embedded default",
        env="FOGGEN_MODEL",
        parse=str,
    )
    mode: Mode = setting(
        Mode.FAST, "decoding mode: fast | grammar | free", env="FOGGEN_MODE", parse=Mode
    )
    orders: int = setting(
        1,
        f"thorough mode (fast mode): ask each question in K fixed orders of its options "
        f"(1-{MAX_ORDERS}) and answer their consensus, routed on its probability (the letter "
        "signal); 1: one pass",
        env="FOGGEN_ORDERS",
        parse=positive_int,
    )
    tau: float | None = setting(
        None,
        f"routing threshold in [0, 1] (default: the routing profile's, else {CARD_TAU})",
        env="FOGGEN_TAU",
        parse=float,
    )
    signal: Signal | None = setting(
        None,
        "routing signal: bucket | letter | calibrated, tau on its scale (default: the routing "
        "profile's, else bucket)",
        env="FOGGEN_SIGNAL",
        parse=Signal,
    )
    profile: str = setting(
        AUTO_PROFILE,
        "routing profile when no signal, tau or tau file is chosen: auto (the named model's "
        "shipped one), none (the card's rule: bucket >= 0.5), an operating point of the "
        "shipped one (cloud-50, cloud-70) or a profile file",
        env="FOGGEN_PROFILE",
        parse=str,
    )
    tau_file: str | None = setting(
        None,
        "per-domain taus from 'foggen tau recommend' (used when a call gives no tau)",
        env="FOGGEN_TAU_FILE",
        parse=str,
    )
    calibrator: str | None = setting(
        None,
        "calibrator JSON for the model's p_correct, or 'none' to run without one "
        "(default: $FOGGEN_HOME/calibrators/<model sha256>.json when it exists)",
        env="FOGGEN_CALIBRATOR",
        parse=str,
    )
    force_route: Route | None = setting(
        None, "override routing: local | cloud (recorded)", env="FOGGEN_FORCE_ROUTE", parse=Route
    )
    n_threads: int = setting(
        max(1, os.cpu_count() or 1),
        "CPU threads for llama.cpp (at most, with adaptive threads)",
        env="FOGGEN_THREADS",
        parse=positive_int,
        flag="--threads",
    )
    adaptive_threads: bool = setting(
        True,
        "before each question, use one thread fewer per core other processes keep busy "
        "(llama.cpp's threads wait for each other: a busy core slows them all)",
        env="FOGGEN_ADAPTIVE_THREADS",
        parse=parse_bool,
    )
    n_ctx: int = setting(
        2048, "context size in tokens", env="FOGGEN_CTX", parse=positive_int, flag="--ctx"
    )
    n_batch: int = setting(
        512,
        "prompt tokens per llama.cpp batch",
        env="FOGGEN_BATCH",
        parse=positive_int,
        flag="--batch",
    )
    mmap: bool = setting(
        False,
        "map the model file instead of reading it into memory: pages shared between processes, "
        "but where llama.cpp repacks the weights both copies stay resident (the 1.5B: 1.89 GB "
        "peak RSS mapped, 1.29 GB read, same speed)",
        env="FOGGEN_MMAP",
        parse=parse_bool,
    )
    node_name: str | None = setting(
        None,
        "this node's name in the provenance of its answers (default: the host name)",
        env="FOGGEN_NODE_NAME",
        parse=str,
    )
    guess: str = setting(
        GUESS_AUTO,
        "the bucket fast mode evaluates with the question in one decode: auto (the model's "
        "usual bucket), one of 0.0 0.25 0.5 0.75 1.0, or none (a decode per choice point)",
        env="FOGGEN_GUESS",
        parse=str,
    )
    cache_prefix: bool = setting(
        True,
        "reuse the system prompt's KV state across questions",
        env="FOGGEN_CACHE_PREFIX",
        parse=parse_bool,
    )

    def __post_init__(self) -> None:
        try:
            if self.tau is not None:
                validate_tau(self.tau)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self._check_orders()  # first: thorough mode's own error names what to change
        if self.signal not in (None, Signal.BUCKET) and self.mode is not Mode.FAST:
            raise ConfigError(
                f"--signal {self.signal.value} reads the letter probabilities of fast mode; "
                f"it cannot be used with --mode {self.mode.value}"
            )
        if self.signal is Signal.CALIBRATED and self.calibrator == NO_CALIBRATOR:
            raise ConfigError("--signal calibrated needs a calibrator; it cannot run with 'none'")
        if self.node_name is not None and not 0 < len(self.node_name.strip()) <= 64:
            raise ConfigError("--node-name must be 1 to 64 characters")
        if self.guess not in (GUESS_AUTO, NO_GUESS, *BUCKETS):
            raise ConfigError(
                f"--guess must be auto, none or a bucket ({', '.join(BUCKETS)}), got {self.guess!r}"
            )
        if self.n_ctx < 256:
            raise ConfigError(f"--ctx must be at least 256 tokens, got {self.n_ctx}")
        for name in ("n_threads", "n_batch"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

    def _check_orders(self) -> None:
        if not 1 <= self.orders <= MAX_ORDERS:
            raise ConfigError(f"--orders must be 1 to {MAX_ORDERS}, got {self.orders}")
        if self.orders > 1 and self.mode is not Mode.FAST:
            raise ConfigError(f"--orders {self.orders} (thorough mode) needs --mode fast")
        if self.orders > 1 and self.tau_file:
            raise ConfigError(
                "thorough mode (--orders) has no tau file: its thresholds are a pass's"
            )
        if self.orders > 1 and self.signal is Signal.CALIBRATED:
            raise ConfigError(
                "thorough mode routes on the consensus probability (--signal letter) or the "
                "bucket: the calibrator ranks a single pass's answer"
            )

    def chose_routing(self) -> bool:
        """Whether a signal, a tau or a tau file was chosen (a routing profile then steps aside)."""
        return self.signal is not None or self.tau is not None or bool(self.tau_file)

    def leaves_routing_to_profile(self) -> bool:
        """Whether a routing profile may decide: nothing chosen, and fast mode's single pass (a
        profile reads its distributions)."""
        return not self.chose_routing() and self.mode is Mode.FAST and self.orders == 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        env = os.environ if env is None else env
        return build_config(cls, flags={}, env=env, error=ConfigError)


def foggen_home(env: Mapping[str, str] | None = None) -> Path:
    """Where FogGen keeps its cache and data: FOGGEN_HOME, else $XDG_CACHE_HOME/foggen."""
    env = os.environ if env is None else env
    if env.get("FOGGEN_HOME"):
        return Path(env["FOGGEN_HOME"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "foggen"
