"""Routing profiles: what a named model routes on when nobody chose a signal or a tau.

A profile is chosen on labelled questions outside eval (``benchmarks/probes``): the signal that
ranks the model's answers best there, the calibrator it needs (pinned by the sha256 of its file
content), and per-domain thresholds at fixed cloud fractions, each a tau table
(``edge_runtime.routing.taus``)::

    {"format": "foggen-profile", "version": 1, "name": "qwen2.5-coder-1.5b",
     "model_sha256": "...", "signal": "calibrated", "calibrator_sha256": "..." | null,
     "default_point": "cloud-50",
     "points": {"cloud-50": {<tau table>}, "cloud-70": {<tau table>}},
     "note": "what it routes on, in words", "chosen_on": {...}}

The package ships one per named model (``edge_runtime/data/profiles/<model sha256>.json``).
It applies only when no signal, tau or tau file is chosen anywhere (flag, environment, the
Python API, a request's own): any of those replaces the whole profile, and the card's rule
(bucket >= 0.5) fills what was not chosen. A profile on the calibrated signal applies only with
the very calibrator it was made with; with another one loaded it steps aside (logged), since
its thresholds are on that calibrator's scale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge_runtime.errors import ConfigError
from edge_runtime.routing.rule import Signal
from edge_runtime.routing.taus import TauTable

FORMAT = "foggen-profile"
VERSION = 1
PROFILES_DIR = "profiles"
AUTO, NO_PROFILE = "auto", "none"


class ProfileError(ConfigError):
    """A profile file that cannot be used (unreadable, another model, another format)."""


@dataclass(frozen=True)
class Profile:
    name: str
    model_sha256: str
    signal: Signal
    points: MappingProxyType[str, TauTable]
    default_point: str
    calibrator_sha256: str | None
    note: str

    def table(self, point: str | None = None) -> TauTable:
        """The thresholds at ``point`` (default: the profile's own)."""
        chosen = point or self.default_point
        if chosen not in self.points:
            raise ProfileError(
                f"the profile {self.name} has no operating point {chosen!r} "
                f"(it has {', '.join(self.points)})"
            )
        return self.points[chosen]

    @classmethod
    def from_dict(cls, data: Any, *, origin: str) -> Profile:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProfileError(f"{origin}: not a FogGen routing profile")
        if data.get("version") != VERSION:
            raise ProfileError(f"{origin}: profile version {data.get('version')!r}, not {VERSION}")
        try:
            points = {
                str(name): TauTable.from_dict(table, origin=f"{origin} ({name})")
                for name, table in data["points"].items()
            }
            profile = cls(
                name=str(data["name"]),
                model_sha256=str(data["model_sha256"]),
                signal=Signal(data["signal"]),
                points=MappingProxyType(points),
                default_point=str(data["default_point"]),
                calibrator_sha256=data.get("calibrator_sha256"),
                note=str(data.get("note", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"{origin}: malformed profile ({exc})") from exc
        for name, table in profile.points.items():
            if table.signal is not profile.signal or table.model_sha256 != profile.model_sha256:
                raise ProfileError(f"{origin}: the point {name!r} is for another model or signal")
        profile.table()  # the default point exists
        return profile

    @classmethod
    def load(cls, path: Path) -> Profile:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"cannot read the routing profile {path}: {exc}") from exc
        return cls.from_dict(data, origin=str(path))


def shipped_profile_path(sha256: str) -> Path:
    return Path(__file__).resolve().parent.parent / "data" / PROFILES_DIR / f"{sha256}.json"


def content_sha256(data: Mapping[str, Any]) -> str:
    """The sha256 of a JSON document's canonical form (what a profile pins a calibrator by)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_profile(setting: str, model_sha256: str) -> tuple[Profile, str | None] | None:
    """The profile a ``--profile`` setting names for this model, and the operating point:
    ``auto`` (the shipped one, if any), ``none``, a point of the shipped one (``cloud-70``),
    or a profile file's path."""
    if setting == NO_PROFILE:
        return None
    path, point = shipped_profile_path(model_sha256), None
    if setting != AUTO:
        candidate = Path(setting).expanduser()
        if candidate.suffix == ".json" or candidate.exists():
            path = candidate
        else:
            point = setting
    if not path.is_file():
        if setting == AUTO:
            return None
        raise ProfileError(f"no routing profile at {path} (for --profile {setting})")
    profile = Profile.load(path)
    if profile.model_sha256 != model_sha256:
        raise ProfileError(
            f"{path} is the routing profile of model {profile.model_sha256[:12]}..., "
            f"not of the loaded {model_sha256[:12]}..."
        )
    profile.table(point)
    return profile, point
