"""Per-domain routing thresholds chosen by ``foggen tau recommend``, loaded by the runtime.

The file (JSON, written by ``benchmarks.bench.tau``)::

    {"format": "foggen-taus", "version": 1,
     "model_sha256": "<the GGUF's sha256>", "signal": "bucket | letter | calibrated",
     "target": {"cloud_fraction": 0.3} or {"accuracy": 0.6},
     "global": {"tau": 0.25, "cloud_fraction": ..., "accuracy": ..., "met": ..., "note": ...},
     "domains": {"law": {"tau": ..., ...}, ...},
     "source": {"bench": "...", "split": "...", "n_questions": ..., "git_commit": "..."},
     "p_correct_version": 1 | 2 | 3}   (signal calibrated: which calibrator's scale; optional)

A question whose domain has an entry uses that tau, any other the global one. Thresholds are on
the scale of one signal and were measured on one model: a file made for another model or
signal is refused, and so is a ``calibrated`` file made on another calibrator version's scale.
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
    p_correct_version: int | None = None

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
                p_correct_version=_version(data.get("p_correct_version")),
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

    def check(
        self,
        *,
        model_sha256: str,
        signal: Signal,
        origin: str,
        p_correct_version: int | None = None,
    ) -> None:
        """Refuse thresholds measured on another model or another signal's scale."""
        mine, theirs = self.p_correct_version, p_correct_version
        if signal is Signal.CALIBRATED and mine and theirs and mine != theirs:
            raise TauTableError(
                f"{origin} holds thresholds for calibrator version {mine}, but the loaded "
                f"calibrator is version {theirs}; re-run 'foggen tau recommend' on a bench "
                "of this calibrator"
            )
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


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if value not in (1, 2, 3):
        raise ValueError(f"p_correct_version {value!r} (1, 2 or 3 expected)")
    return int(value)
