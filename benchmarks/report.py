"""What every benchmark report carries: summaries and the machine (the git commit:
``edge_runtime.provenance.git_commit``)."""

from __future__ import annotations

import json
import platform
import statistics
from pathlib import Path
from typing import Any

from edge_runtime.atomic import write_text_atomic


def summary(values: list[float]) -> dict[str, float]:
    """Median and p95 (nearest rank), rounded to 0.01."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 2), "p95": round(p95, 2)}


def machine() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }


def write_json(path: str | Path, report: dict[str, Any]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out, json.dumps(report, indent=1, ensure_ascii=False))
