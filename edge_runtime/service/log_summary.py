"""Reading the decision log as people and scripts want it: one line per decision, a summary."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def line(entry: dict[str, Any]) -> str:
    """One decision, human-readable."""
    latency = (entry.get("latency_ms") or {}).get("total")
    confidence = entry.get("confidence")
    return "  ".join(
        [
            str(entry.get("logged_at", "-")),
            str(entry.get("id", "-")),
            f"answer={entry.get('answer') or '-'}",
            f"conf={'-' if confidence is None else confidence}",
            f"route={entry.get('route', '-')}",
            f"source={entry.get('answer_source', '-')}",
            f"escalation={entry.get('escalation', '-')}",
            f"{latency:.0f} ms" if isinstance(latency, int | float) else "- ms",
            *([f"path={path}"] if (path := _path(entry)) else []),
        ]
    )


def _path(entry: dict[str, Any]) -> str | None:
    """The tiers the answer came through (schema 3), e.g. ``kiosk>gateway>api.example.com``,
    when there was more than one."""
    hops = entry.get("provenance")
    if not isinstance(hops, list) or len(hops) < 2:
        return None
    return ">".join(str(hop.get("node", "?")) for hop in hops if isinstance(hop, dict))


def summarise(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    routes: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    latencies: list[float] = []
    first = last = None
    for entry in entries:
        routes[str(entry.get("route"))] += 1
        sources[str(entry.get("answer_source"))] += 1
        escalations[str(entry.get("escalation"))] += 1
        total = (entry.get("latency_ms") or {}).get("total")
        if isinstance(total, int | float):
            latencies.append(float(total))
        first = first or entry.get("logged_at")
        last = entry.get("logged_at") or last
    n = sum(routes.values())
    return {
        "entries": n,
        "first": first,
        "last": last,
        "routed_fraction": round(routes["cloud"] / n, 4) if n else None,
        "route": dict(routes),
        "answer_source": dict(sources),
        "escalation": dict(escalations),
        "latency_ms": {
            "median": round(statistics.median(latencies), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
    }


def render_summary(summary: dict[str, Any], path: Path) -> str:
    def counts(name: str) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(summary[name].items())) or "-"

    routed = summary["routed_fraction"]
    return "\n".join(
        [
            f"decision log {path}: {summary['entries']} entries, {summary['first']} .. "
            f"{summary['last']}",
            f"routed to the cloud: {'-' if routed is None else f'{routed:.1%}'}",
            f"route: {counts('route')}",
            f"answer source: {counts('answer_source')}",
            f"escalation: {counts('escalation')}",
            f"latency ms: median {summary['latency_ms']['median']}, max "
            f"{summary['latency_ms']['max']}",
        ]
    )
