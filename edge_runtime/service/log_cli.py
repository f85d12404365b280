"""``foggen log``: read the service's decision log (and its rotated files) from the shell.

    foggen log                 the last 20 decisions, one line each
    foggen log --last 0 --json every entry as JSON Lines (the decision record + logged_at)
    foggen log --summary       counts by route, answer source and escalation, latency, routed %

Needs no extra (no FastAPI): the kiosk operator reads the log on the device itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_log_command(commands: Any) -> None:
    reader = commands.add_parser(
        "log",
        help="read the kiosk service's decision log (last decisions, or a summary)",
        description="Print the decision log of 'foggen serve' (rotated files included, oldest "
        "first; a torn line is skipped with a warning).",
    )
    reader.add_argument("--decision-log", metavar="PATH",
                        help="the log (default: FOGGEN_DECISION_LOG, else beside the outbox: "
                        "$FOGGEN_HOME/decisions.jsonl)")  # fmt: skip
    reader.add_argument("--last", type=int, default=20, metavar="N",
                        help="the last N entries (0: all; default 20)")  # fmt: skip
    reader.add_argument("--summary", action="store_true", help="counts instead of entries")
    reader.add_argument("--json", action="store_true", help="JSON Lines (or one JSON summary)")
    reader.set_defaults(handler=run_log)


def run_log(args: argparse.Namespace) -> int:
    from edge_runtime.service.config import ServiceConfig
    from edge_runtime.service.decision_log import log_files, read_log

    if args.last < 0:
        print("foggen: --last must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    config = ServiceConfig.from_env()
    path = Path(args.decision_log) if args.decision_log else config.decision_log_path(os.environ)
    if not log_files(path):
        print(f"foggen: no decision log at {path} (has 'foggen serve' answered yet?)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    entries = read_log(path)
    if args.summary:
        summary = summarise(entries)
        print(json.dumps(summary) if args.json else render_summary(summary, path))
        return EXIT_OK
    chosen: Iterable[dict[str, Any]] = deque(entries, maxlen=args.last) if args.last else entries
    for entry in chosen:
        print(json.dumps(entry, ensure_ascii=False) if args.json else line(entry))
    return EXIT_OK


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
        ]
    )


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
