"""Per-domain routing thresholds chosen by ``foggen tau recommend``, loaded by the runtime.

The file (JSON, written by ``benchmarks.bench.tau``)::

    {"format": "foggen-taus", "version": 1,
     "model_sha256": "<the GGUF's sha256>", "signal": "bucket | letter | calibrated",
     "target": {"cloud_fraction": 0.3} or {"accuracy": 0.6},
     "global": {"tau": 0.25, "cloud_fraction": ..., "accuracy": ..., "met": ..., "note": ...},
     "domains": {"law": {"tau": ..., ...}, ...},
     "source": {"bench": "...", "split": "...", "n_questions": ..., "git_commit": "..."}}

A question whose domain has an entry uses that tau, any other the global one. Thresholds are on
the scale of one signal and were measured on one model: a file made for another model or
signal is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge_runtime.errors import TauTableError
from edge_runtime.routing.rule import Signal, validate_tau

FORMAT = "foggen-taus"
VERSION = 1


@dataclass(frozen=True)
class TauTable:
    signal: Signal
    model_sha256: str
    global_tau: float
    domains: MappingProxyType[str, float]

    def tau_for(self, domain: str | None) -> float:
        return self.domains.get(domain or "", self.global_tau)

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = "tau file") -> TauTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TauTableError(f"{origin}: not a FogGen tau file (format {FORMAT!r} expected)")
        if data.get("version") != VERSION:
            raise TauTableError(
                f"{origin}: version {data.get('version')!r} is not supported (this build reads "
                f"{VERSION}); re-run 'foggen tau recommend'"
            )
        try:
            domains = {str(d): validate_tau(v["tau"]) for d, v in data["domains"].items()}
            return cls(
                signal=Signal(data["signal"]),
                model_sha256=str(data["model_sha256"]),
                global_tau=validate_tau(data["global"]["tau"]),
                domains=MappingProxyType(domains),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TauTableError(f"{origin}: malformed tau file ({exc})") from exc

    @classmethod
    def load(cls, path: str | Path) -> TauTable:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TauTableError(f"cannot read the tau file {path}: {exc}") from exc
        return cls.from_dict(data, origin=str(path))

    def check(self, *, model_sha256: str, signal: Signal, origin: str) -> None:
        """Refuse thresholds measured on another model or another signal's scale."""
        if self.model_sha256 != model_sha256:
            raise TauTableError(
                f"{origin} was made for model {self.model_sha256[:12]}..., not the loaded "
                f"{model_sha256[:12]}...; run 'foggen bench' and 'foggen tau recommend' for it"
            )
        if self.signal is not signal:
            raise TauTableError(
                f"{origin} holds thresholds for --signal {self.signal.value}, but the runtime "
                f"routes on --signal {signal.value}; pass --signal {self.signal.value}"
            )
