"""Service settings: one frozen dataclass, flags > environment > defaults (as RuntimeConfig).

The bearer token comes from ``FOGGEN_API_TOKEN`` only (a flag would show up in ``ps``); it is
left out of ``repr`` and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from confkit import build_config, positive_int, setting
from edge_runtime.errors import ConfigError

DECISION_LOG_FILENAME = "decisions.jsonl"
IDEMPOTENCY_FILENAME = "idempotency.sqlite3"


class QuestionLogging(str, Enum):
    FULL = "full"  # question and options as asked
    REDACT = "redact"  # e-mails, phone and card numbers replaced (as before a cloud call)
    OMIT = "omit"  # no question text in the log at all


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be 0..65535 (0: any free port), got {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


@dataclass(frozen=True)
class ServiceConfig:
    host: str = setting(
        "127.0.0.1",
        "address to bind (loopback unless another is asked for)",
        env="FOGGEN_HOST",
        parse=str,
    )
    port: int = setting(
        8080, "TCP port (0: any free port, printed at start)", env="FOGGEN_PORT", parse=_port
    )
    api_token: str | None = setting(
        None,
        "bearer token required on /v1/* and /metrics",
        env="FOGGEN_API_TOKEN",
        parse=str,
        secret=True,
    )
    queue_size: int = setting(
        4,
        "requests that may wait for the model behind the one it answers; more get 429",
        env="FOGGEN_QUEUE_SIZE",
        parse=_count,
    )
    max_body_bytes: int = setting(
        262_144,
        "largest request body in bytes; larger gets 413",
        env="FOGGEN_MAX_BODY_BYTES",
        parse=positive_int,
    )
    retry_after: int = setting(
        1,
        "seconds a 429 or a not-ready 503 asks the client to wait",
        env="FOGGEN_RETRY_AFTER",
        parse=positive_int,
    )
    decision_log: str | None = setting(
        None,
        f"decision log (JSON Lines); unset: $FOGGEN_HOME/{DECISION_LOG_FILENAME}, else "
        f"$XDG_DATA_HOME/foggen/{DECISION_LOG_FILENAME}",
        env="FOGGEN_DECISION_LOG",
        parse=str,
    )
    log_max_bytes: int = setting(
        10_000_000,
        "rotate the decision log beyond this size",
        env="FOGGEN_LOG_MAX_BYTES",
        parse=positive_int,
    )
    log_keep: int = setting(
        5,
        "rotated decision logs kept (older ones are deleted)",
        env="FOGGEN_LOG_KEEP",
        parse=_count,
    )
    log_questions: QuestionLogging = setting(
        QuestionLogging.REDACT,
        "question text in the decision log: full | redact | omit",
        env="FOGGEN_LOG_QUESTIONS",
        parse=QuestionLogging,
    )
    flush_interval: float = setting(
        60.0,
        "seconds between background outbox flushes (when a cloud is configured)",
        env="FOGGEN_FLUSH_INTERVAL",
        parse=float,
    )
    max_hops: int = setting(
        4,
        "most FogGen nodes a question may pass through, this one included; more get 508",
        env="FOGGEN_MAX_HOPS",
        parse=positive_int,
    )
    idempotency_store: str | None = setting(
        None,
        "answers kept by Idempotency-Key (SQLite, survives restarts); default: "
        f"{IDEMPOTENCY_FILENAME} beside the decision log",
        env="FOGGEN_IDEMPOTENCY_STORE",
        parse=str,
    )
    idempotency_keys: int = setting(
        10_000,
        "answers kept for replay by Idempotency-Key (the oldest go first)",
        env="FOGGEN_IDEMPOTENCY_KEYS",
        parse=positive_int,
    )
    idempotency_ttl: float = setting(
        86_400.0,
        "seconds an answer is kept for replay by Idempotency-Key",
        env="FOGGEN_IDEMPOTENCY_TTL",
        parse=float,
    )
    shutdown_timeout: float = setting(
        30.0,
        "seconds SIGTERM waits for in-flight requests before closing them",
        env="FOGGEN_SHUTDOWN_TIMEOUT",
        parse=float,
    )

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise ConfigError("--host must not be empty - e.g. 127.0.0.1")
        if self.api_token is not None and not self.api_token.strip():
            raise ConfigError("FOGGEN_API_TOKEN is blank - unset it or give a real token")
        for name in ("flush_interval", "shutdown_timeout", "idempotency_ttl"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceConfig:
        env = os.environ if env is None else env
        return build_config(cls, flags={}, env=env, error=ConfigError)

    def decision_log_path(self, env: Mapping[str, str] | None = None) -> Path:
        """The configured path, else beside the outbox (user data, not cache)."""
        if self.decision_log:
            return Path(self.decision_log).expanduser()
        env = os.environ if env is None else env
        if env.get("FOGGEN_HOME"):
            return Path(env["FOGGEN_HOME"]).expanduser() / DECISION_LOG_FILENAME
        base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base).expanduser() / "foggen" / DECISION_LOG_FILENAME

    def idempotency_path(self, env: Mapping[str, str] | None = None) -> Path:
        if self.idempotency_store:
            return Path(self.idempotency_store).expanduser()
        return self.decision_log_path(env).with_name(IDEMPOTENCY_FILENAME)
