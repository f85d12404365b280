"""OpenAI-compatible cloud escalation that never loses a question.

    from cloud_client import CloudClient, CloudConfig
    with CloudClient(CloudConfig(url="http://127.0.0.1:8000/v1")) as client:
        answer = client.ask("2 + 2 = ?", ["3", "4", "5"])  # answer.letter == "B"

Modules: ``config`` (CloudConfig), ``client`` (HTTP, retries, deadline; the only module that
makes outgoing requests), ``protocol`` (request body, letter parsing), ``retry`` (backoff,
Retry-After), ``breaker`` (circuit breaker), ``outbox`` (SQLite WAL queue and replay),
``privacy`` (never-escalate rules, redaction), ``errors``. Names are imported lazily:
``import cloud_client`` loads neither requests nor sqlite3. Nothing here imports
``edge_runtime``; the runtime uses this package, not the other way round.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CloudClient", "CloudAnswer", "CloudConfig", "Outbox", "PrivacyPolicy", "flush"]

_EXPORTS = {
    "CloudClient": "cloud_client.client",
    "CloudAnswer": "cloud_client.client",
    "CloudConfig": "cloud_client.config",
    "Outbox": "cloud_client.outbox",
    "flush": "cloud_client.outbox",
    "PrivacyPolicy": "cloud_client.privacy",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cloud_client' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
