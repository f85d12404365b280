"""Cloud escalation settings: one frozen dataclass, built once from flags > environment > defaults.

Fields are ``confkit.setting``s, like every config's, so the ``foggen`` CLI generates flags and
reads the environment with the same code for all. This module imports nothing from
``edge_runtime``: the dependency points one way, from the runtime to the cloud client.

The API key comes from ``FOGGEN_CLOUD_API_KEY`` only (a flag would show up in ``ps``); it is
left out of ``repr`` and never written to logs, errors, the decision record or the outbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cloud_client.errors import CloudConfigError
from confkit import parse_bool, setting


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted({name.strip() for name in text.split(",") if name.strip()}))


@dataclass(frozen=True)
class CloudConfig:
    url: str | None = setting(
        None,
        "OpenAI-compatible base URL including /v1 (empty: no cloud, answer on the device)",
        env="FOGGEN_CLOUD_URL",
        parse=str,
        flag="--cloud-url",
    )
    model: str | None = setting(
        None,
        "cloud model name (empty: the first model the server lists at /v1/models)",
        env="FOGGEN_CLOUD_MODEL",
        parse=str,
        flag="--cloud-model",
    )
    api_key: str | None = setting(
        None, "bearer token for the cloud", env="FOGGEN_CLOUD_API_KEY", parse=str, secret=True
    )
    outbox: str | None = setting(
        None,
        "outbox database; unset: $FOGGEN_HOME/outbox.sqlite3, else "
        "$XDG_DATA_HOME/foggen/outbox.sqlite3",
        env="FOGGEN_OUTBOX",
        parse=str,
        flag="--outbox",
    )
    connect_timeout: float = setting(
        3.0,
        "seconds to open a connection to the cloud",
        env="FOGGEN_CLOUD_CONNECT_TIMEOUT",
        parse=float,
        flag="--cloud-connect-timeout",
    )
    read_timeout: float = setting(
        10.0,
        "seconds to wait for each read of the cloud's reply (in front of a FogGen gateway: "
        "its model's time plus its own cloud's deadline)",
        env="FOGGEN_CLOUD_READ_TIMEOUT",
        parse=float,
        flag="--cloud-read-timeout",
    )
    deadline: float = setting(
        15.0,
        "latency budget in seconds for one question's escalation, all attempts included",
        env="FOGGEN_CLOUD_DEADLINE",
        parse=float,
        flag="--cloud-deadline",
    )
    retries: int = setting(
        2,
        "retries after the first attempt",
        env="FOGGEN_CLOUD_RETRIES",
        parse=int,
        flag="--cloud-retries",
    )
    backoff: float = setting(
        0.5,
        "first backoff in seconds (doubles, with jitter)",
        env="FOGGEN_CLOUD_BACKOFF",
        parse=float,
    )
    backoff_max: float = setting(
        4.0, "longest backoff", env="FOGGEN_CLOUD_BACKOFF_MAX", parse=float
    )
    breaker_failures: int = setting(
        5,
        "consecutive failed attempts that open the circuit breaker",
        env="FOGGEN_CLOUD_BREAKER_FAILURES",
        parse=int,
    )
    breaker_cooldown: float = setting(
        30.0,
        "seconds before an open breaker lets one probe through",
        env="FOGGEN_CLOUD_BREAKER_COOLDOWN",
        parse=float,
    )
    max_tokens: int = setting(
        256, "max_tokens for the cloud reply", env="FOGGEN_CLOUD_MAX_TOKENS", parse=int
    )
    never_domains: tuple[str, ...] = setting(
        (),
        "comma-separated domains that never leave the device",
        env="FOGGEN_CLOUD_NEVER_DOMAINS",
        parse=_names,
    )
    never_regex: str | None = setting(
        None,
        "questions matching this regular expression never leave the device",
        env="FOGGEN_CLOUD_NEVER_REGEX",
        parse=str,
    )
    redact: bool = setting(
        True,
        "redact e-mails, phone and card numbers before sending",
        env="FOGGEN_CLOUD_REDACT",
        parse=parse_bool,
    )

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
