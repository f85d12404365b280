"""``foggen log``: read the kiosk service's decision log (and its rotated files) from the shell.

    foggen log                 the last 20 decisions, one line each
    foggen log --last 0 --json every entry as JSON Lines (the decision record + logged_at)
    foggen log --summary       counts by route, answer source and escalation, latency, routed %

Needs no extra (no FastAPI): the kiosk operator reads the log on the device itself.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from foggen.exits import EXIT_OK


def register(commands: Any) -> None:
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
    reader.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edge_runtime.errors import ConfigError
    from edge_runtime.service.config import ServiceConfig
    from edge_runtime.service.decision_log import log_files, read_log
    from edge_runtime.service.log_summary import line, render_summary, summarise

    if args.last < 0:
        raise ConfigError("--last must be >= 0")
    config = ServiceConfig.from_env()
    path = Path(args.decision_log) if args.decision_log else config.decision_log_path(os.environ)
    if not log_files(path):
        raise ConfigError(f"no decision log at {path} (has 'foggen serve' answered yet?)")
    entries = read_log(path)
    if args.summary:
        summary = summarise(entries)
        print(json.dumps(summary) if args.json else render_summary(summary, path))
        return EXIT_OK
    chosen: Iterable[dict[str, Any]] = deque(entries, maxlen=args.last) if args.last else entries
    for entry in chosen:
        print(json.dumps(entry, ensure_ascii=False) if args.json else line(entry))
    return EXIT_OK
