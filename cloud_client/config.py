"""Cloud escalation settings: one frozen dataclass, built once from flags > environment > defaults.

Field metadata has the same shape as ``edge_runtime.config`` (``env``, ``help``, ``parse``,
optionally ``flag``), so the ``foggen`` CLI generates flags and reads the environment with the
same code for both. This module imports nothing from ``edge_runtime``: the dependency points
one way, from the runtime to the cloud client.

The API key comes from ``FOGGEN_CLOUD_API_KEY`` only (a flag would show up in ``ps``); it is
left out of ``repr`` and never written to logs, errors, the decision record or the outbox.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cloud_client.errors import CloudConfigError


def _opt(
    env: str,
    help: str,
    default: Any,
    parse: Callable[[str], Any],
    *,
    flag: str | None = None,
    secret: bool = False,
) -> Any:
    metadata: dict[str, Any] = {"env": env, "help": help, "parse": parse, "env_only": secret}
    if flag:
        metadata["flag"] = flag
    return field(default=default, repr=not secret, metadata=metadata)


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted({name.strip() for name in text.split(",") if name.strip()}))


@dataclass(frozen=True)
class CloudConfig:
    url: str | None = _opt(
        "FOGGEN_CLOUD_URL",
        "OpenAI-compatible base URL including /v1 (empty: no cloud, answer on the device)",
        None,
        str,
        flag="--cloud-url",
    )
    model: str | None = _opt(
        "FOGGEN_CLOUD_MODEL",
        "cloud model name (empty: the first model the server lists at /v1/models)",
        None,
        str,
        flag="--cloud-model",
    )
    api_key: str | None = _opt(
        "FOGGEN_CLOUD_API_KEY", "bearer token for the cloud", None, str, secret=True
    )
    outbox: str | None = _opt(
        "FOGGEN_OUTBOX",
        "outbox database; unset: $FOGGEN_HOME/outbox.sqlite3, else "
        "$XDG_DATA_HOME/foggen/outbox.sqlite3",
        None,
        str,
        flag="--outbox",
    )
    connect_timeout: float = _opt(
        "FOGGEN_CLOUD_CONNECT_TIMEOUT", "seconds to open a connection", 3.0, float
    )
    read_timeout: float = _opt(
        "FOGGEN_CLOUD_READ_TIMEOUT", "seconds to wait for each read of the reply", 10.0, float
    )
    deadline: float = _opt(
        "FOGGEN_CLOUD_DEADLINE",
        "latency budget in seconds for one question's escalation, all attempts included",
        15.0,
        float,
    )
    retries: int = _opt("FOGGEN_CLOUD_RETRIES", "retries after the first attempt", 2, int)
    backoff: float = _opt(
        "FOGGEN_CLOUD_BACKOFF", "first backoff in seconds (doubles, with jitter)", 0.5, float
    )
    backoff_max: float = _opt("FOGGEN_CLOUD_BACKOFF_MAX", "longest backoff", 4.0, float)
    breaker_failures: int = _opt(
        "FOGGEN_CLOUD_BREAKER_FAILURES",
        "consecutive failed attempts that open the circuit breaker",
        5,
        int,
    )
    breaker_cooldown: float = _opt(
        "FOGGEN_CLOUD_BREAKER_COOLDOWN",
        "seconds before an open breaker lets one probe through",
        30.0,
        float,
    )
    max_tokens: int = _opt("FOGGEN_CLOUD_MAX_TOKENS", "max_tokens for the cloud reply", 256, int)
    never_domains: tuple[str, ...] = _opt(
        "FOGGEN_CLOUD_NEVER_DOMAINS",
        "comma-separated domains that never leave the device",
        (),
        _names,
    )
    never_regex: str | None = _opt(
        "FOGGEN_CLOUD_NEVER_REGEX",
        "questions matching this regular expression never leave the device",
        None,
        str,
    )
    redact: bool = _opt(
        "FOGGEN_CLOUD_REDACT", "redact e-mails, phone and card numbers before sending", True, bool
    )  # parse=bool: the config builder reads true/false, yes/no, on/off, 1/0

    def __post_init__(self) -> None:
        if self.url is not None:
            _check_url(self.url)
            object.__setattr__(self, "url", self.url.rstrip("/"))
        positive = ("connect_timeout", "read_timeout", "deadline", "max_tokens")
        for name in positive:
            if not getattr(self, name) > 0:
                raise CloudConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.retries <= 10:
            raise CloudConfigError(f"retries must be 0..10, got {self.retries}")
        if not 0 <= self.backoff <= self.backoff_max:
            raise CloudConfigError("backoff must be >= 0 and no larger than backoff_max")
        if self.breaker_failures < 1 or self.breaker_cooldown < 0:
            raise CloudConfigError("breaker_failures must be >= 1 and breaker_cooldown >= 0")
        if self.never_regex is not None:
            try:
                re.compile(self.never_regex)
            except re.error as exc:
                raise CloudConfigError(f"never_regex does not compile: {exc}") from exc

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def lease_seconds(self) -> float:
        """How long a flusher may hold an outbox entry: a whole escalation and then some."""
        return 2 * (self.deadline + self.read_timeout) + 10.0


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if "@" in parts.netloc:  # checked first: the message must not repeat a secret
        raise CloudConfigError(
            "the cloud URL carries credentials - put the key in FOGGEN_CLOUD_API_KEY instead"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CloudConfigError(
            f"cloud URL {url!r} is not an http(s) URL - give e.g. http://host:8000/v1"
        )
    if parts.query or parts.fragment:
        raise CloudConfigError(f"cloud URL {url!r} must not have a query or fragment")
