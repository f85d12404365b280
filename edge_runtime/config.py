"""Runtime configuration: one frozen dataclass, built once from flags > environment > defaults.

Each field's metadata names its environment variable and help text, so the CLI flags are
generated from here and defaults and help never drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from edge_runtime.errors import ConfigError
from edge_runtime.routing import Route, validate_tau

MAX_NEW_TOKENS = 64


class Mode(str, Enum):
    FAST = "fast"  # schema-aware greedy: logits read only at the choice points
    GRAMMAR = "grammar"  # llama.cpp GBNF-constrained greedy decoding (the card's reference)
    FREE = "free"  # unconstrained greedy generation, then parsing (format-compliance probe)


class Signal(str, Enum):
    BUCKET = "bucket"  # the emitted confidence bucket (the card's routing signal)
    LETTER = "letter"  # the probability of the emitted letter among the offered ones (fast)
    CALIBRATED = "calibrated"  # p_correct from the model's fitted calibrator (fast)


def _opt(env: str, help: str, default: Any, parse: Callable[[str], Any] | None = None) -> Any:
    return field(default=default, metadata={"env": env, "help": help, "parse": parse})


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive whole number, got {value}")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class RuntimeConfig:
    model: str | None = _opt(
        "FOGGEN_MODEL",
        "GGUF to run: a path, hf://owner/repo/file.gguf[@rev], or empty for the embedded default",
        None,
        str,
    )
    mode: Mode = _opt("FOGGEN_MODE", "decoding mode: fast | grammar | free", Mode.FAST, Mode)
    tau: float = _opt("FOGGEN_TAU", "routing threshold in [0, 1]", 0.5, float)
    signal: Signal = _opt(
        "FOGGEN_SIGNAL",
        "routing signal: bucket | letter | calibrated (tau is on its scale)",
        Signal.BUCKET,
        Signal,
    )
    tau_file: str | None = _opt(
        "FOGGEN_TAU_FILE",
        "per-domain taus from 'foggen tau recommend' (used when a call gives no tau)",
        None,
        str,
    )
    force_route: Route | None = _opt(
        "FOGGEN_FORCE_ROUTE", "override routing: local | cloud (recorded)", None, Route
    )
    n_threads: int = _opt(
        "FOGGEN_THREADS", "CPU threads for llama.cpp", max(1, os.cpu_count() or 1), _positive_int
    )
    n_ctx: int = _opt("FOGGEN_CTX", "context size in tokens", 2048, _positive_int)
    n_batch: int = _opt("FOGGEN_BATCH", "prompt tokens per llama.cpp batch", 512, _positive_int)
    cache_prefix: bool = _opt(
        "FOGGEN_CACHE_PREFIX", "reuse the system prompt's KV state across questions", True, _bool
    )

    def __post_init__(self) -> None:
        try:
            validate_tau(self.tau)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if self.signal is not Signal.BUCKET and self.mode is not Mode.FAST:
            raise ConfigError(
                f"--signal {self.signal.value} reads the letter probabilities of fast mode; "
                f"it cannot be used with --mode {self.mode.value}"
            )
        if self.n_ctx < 256:
            raise ConfigError(f"--ctx must be at least 256 tokens, got {self.n_ctx}")
        for name in ("n_threads", "n_batch"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        return build_config(cls, flags={}, env=os.environ if env is None else env)


C = TypeVar("C")


def _flag(name: str) -> str:
    return {"n_threads": "--threads", "n_ctx": "--ctx", "n_batch": "--batch"}.get(
        name, "--" + name.replace("_", "-")
    )


def _flag_and_dest(f: dataclasses.Field[Any]) -> tuple[str, str]:
    """A field's flag and argparse dest; metadata "flag" (e.g. --cloud-url) names both."""
    if "flag" in f.metadata:
        return f.metadata["flag"], f.metadata["flag"].lstrip("-").replace("-", "_")
    return _flag(f.name), f.name


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, *, only: tuple[str, ...] | None = None
) -> None:
    """Add one flag per config field (default None, so 'not given' is visible); fields marked
    ``env_only`` (secrets: a flag would show in ``ps``) get none."""
    for f in dataclasses.fields(cls):
        if "env" not in f.metadata or f.metadata.get("env_only"):
            continue
        if only is not None and f.name not in only:
            continue
        default = f.default.value if isinstance(f.default, Enum) else f.default
        choices = [m.value for m in f.metadata["parse"]] if _is_enum(f.metadata["parse"]) else None
        flag, dest = _flag_and_dest(f)
        parser.add_argument(
            flag,
            dest=dest,
            default=None,
            choices=choices,
            help=f"{f.metadata['help']} (env {f.metadata['env']}; default: {default})",
        )


def _is_enum(parse: object) -> bool:
    return isinstance(parse, type) and issubclass(parse, Enum)


def build_config(cls: type[C], *, flags: Mapping[str, Any], env: Mapping[str, str]) -> C:
    """Flag > environment variable > default, each value parsed and then validated."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if "env" not in f.metadata:
            continue
        flag, dest = _flag_and_dest(f)
        raw, origin = flags.get(dest), flag
        if raw is None and env.get(f.metadata["env"], "") != "":
            raw, origin = env[f.metadata["env"]], f.metadata["env"]
        if raw is None:
            continue
        parse = _bool if f.metadata["parse"] is bool else f.metadata["parse"]  # bool("no") is True
        try:
            values[f.name] = parse(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise ConfigError(f"{origin}: invalid value {raw!r} ({exc})") from exc
    return cls(**values)


def foggen_home(env: Mapping[str, str] | None = None) -> Path:
    """Where FogGen keeps its cache and data: FOGGEN_HOME, else $XDG_CACHE_HOME/foggen."""
    env = os.environ if env is None else env
    if env.get("FOGGEN_HOME"):
        return Path(env["FOGGEN_HOME"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "foggen"
